//! Intake: how many requests are read off the sockets at once. Admission (`super::admission`)
//! bounds the requests being handled and sheds those that wait too long, but a request that
//! waits for admission has been read and parsed: its head, its body's channel and its future
//! cost about 2 KiB, and a sale opening parks thousands. Intake keeps most of them unread
//! instead, as bytes in the kernel's socket buffer, which cost the daemon nothing.
//!
//! A connection with bytes to read takes an intake place of its request's class (told from
//! the method's first byte, peeked, not read), then reads and parses; the place goes with the
//! request until its answer is made. Each class has four places per handler slot, so
//! admission always has a queue to hand a freed slot to. Without a place, the connection
//! waits, unread, for one. Places are handed out as admission hands out slots: the oldest
//! waiter first while waits are short, the newest once the queue is standing. A waiter that
//! has waited the whole queue budget is let in over the limit, to be answered at once: shed by
//! admission if no slot is free, served if one is. Admission counts a request's wait from
//! when it began to wait here, so the budget bounds the whole wait.
//!
//! A connection holds a place only while it has bytes to read or a request being answered:
//! an idle keep-alive connection, or a slow client between its bytes, holds none.
//!
//! Once a request has been read to its end and its answer written, the stream ends the
//! exchange (hyper sees the end of an idle connection) and the server loop takes the socket
//! back to wait for the next request without hyper's state and buffers (`super::server`). A
//! request whose body was left unread, or that asked to close, stays with hyper, which reads
//! the rest or closes as HTTP/1.1 wants.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::header::CONNECTION;
use axum::http::{HeaderMap, Method, Version};
use bytes::Bytes;
use futures::task::AtomicWaker;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::admission::Class;
use crate::config::ServerSettings;

/// Intake places per handler slot of a class.
const PLACES_PER_SLOT: usize = 4;

#[derive(Clone)]
pub struct Intake {
    inner: Arc<IntakeInner>,
}

struct IntakeInner {
    state: Mutex<[ClassIntake; 2]>,
    budget: Duration,
    /// Three quarters of the budget: a queue whose oldest waiter has waited this long is
    /// standing.
    standing_after: Duration,
}

struct ClassIntake {
    class: Class,
    /// Places taken, over the limit too (a waiter past its budget is let in anyway).
    taken: usize,
    limit: usize,
    /// Connections waiting for a place, oldest first, with when each began to wait. One that
    /// has closed, or was let in meanwhile, is skipped when reached.
    waiting: VecDeque<(Instant, Weak<Connection>)>,
}

impl Class {
    /// A request's class from the first byte of its method (see `Class::of_method`).
    fn of_first_byte(byte: u8) -> Self {
        match byte {
            b'G' | b'H' | b'O' => Self::Read,
            _ => Self::Write,
        }
    }

    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Read),
            2 => Some(Self::Write),
            _ => None,
        }
    }
}

/// Where a connection stands with intake.
const IDLE: u8 = 0;
const WAITING: u8 = 1;
/// Holding a place while reading a request.
const READING_READS: u8 = 2;
const READING_WRITES: u8 = 3;
/// Its request is being answered; the request holds the place (if it took one).
const ANSWERING: u8 = 4;
/// Its answer has been made and is being written.
const SENDING: u8 = 5;
/// Its answer has been written: the exchange is over, and the connection's HTTP state can go
/// until the next request comes. (Reads before the answer is written, as hyper's of an unread
/// body's rest, are not the next request's.)
const ANSWERED: u8 = 6;

/// One connection's standing, shared by its stream (which takes a place) and its service
/// (which hands the place to the request and gives it back with the answer).
pub struct Connection {
    /// Itself, for the queue of waiters.
    me: Weak<Connection>,
    intake: Intake,
    state: AtomicU8,
    /// When the request being read began to wait for its place (or took one at once).
    arrived: Mutex<Option<Instant>>,
    /// The class of the connection's last request (`Class::code`, 0 before the first): the
    /// guess for its next, so the method is peeked only on a connection's first request.
    last_class: AtomicU8,
    /// The request being answered has been read to its end and lets the connection be kept
    /// alive: once its answer is written, the next request may come on a fresh exchange.
    /// Otherwise hyper reads on (what is left of the body), closes or keeps the connection
    /// as it sees fit, within the same exchange.
    exchange_can_end: AtomicBool,
    waker: AtomicWaker,
}

impl Intake {
    pub fn new(settings: &ServerSettings) -> Self {
        let places = |class, slots: std::num::NonZeroU32| ClassIntake {
            class,
            taken: 0,
            limit: usize::try_from(slots.get())
                .unwrap_or(usize::MAX)
                .saturating_mul(PLACES_PER_SLOT),
            waiting: VecDeque::new(),
        };
        let budget = settings.queue_budget();
        Self {
            inner: Arc::new(IntakeInner {
                state: Mutex::new([
                    places(Class::Read, settings.max_concurrent_reads),
                    places(Class::Write, settings.max_concurrent_writes),
                ]),
                budget,
                standing_after: budget * 3 / 4,
            }),
        }
    }

    pub fn connection(&self) -> Arc<Connection> {
        Arc::new_cyclic(|me| Connection {
            me: me.clone(),
            intake: self.clone(),
            state: AtomicU8::new(IDLE),
            arrived: Mutex::new(None),
            last_class: AtomicU8::new(0),
            exchange_can_end: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, [ClassIntake; 2]> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets in the waiters that have waited the whole budget, over the limit: each is
    /// answered at once. Run every tenth of the budget while the server runs, so a waiter
    /// is not kept past its budget when no place comes free.
    pub async fn let_in_overdue_forever(self) {
        let mut tick = tokio::time::interval(self.inner.budget / 10);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut let_in = Vec::new();
            let mut state = self.state();
            for class in state.iter_mut() {
                while let Some((since, _)) = class.waiting.front() {
                    if since.elapsed() < self.inner.budget {
                        break;
                    }
                    if let Some((since, waiter)) = class.waiting.pop_front() {
                        let_in.extend(class.let_in(since, &waiter));
                    }
                }
            }
            drop(state);
            wake(let_in);
        }
    }

    /// Gives back a place of `class` and hands free places to waiters.
    fn give_back(&self, class: Class) {
        let mut let_in = Vec::new();
        let mut state = self.state();
        let class = &mut state[class as usize];
        class.taken = class.taken.saturating_sub(1);
        while class.taken < class.limit {
            let standing = class
                .waiting
                .front()
                .is_some_and(|(since, _)| since.elapsed() >= self.inner.standing_after);
            let next = if standing {
                class.waiting.pop_back()
            } else {
                class.waiting.pop_front()
            };
            let Some((since, waiter)) = next else { break };
            let_in.extend(class.let_in(since, &waiter));
        }
        drop(state);
        wake(let_in);
    }
}

/// Wakes the connections let in, outside the lock: dropping the last handle of a connection
/// that closed meanwhile gives its place back, which takes the lock.
fn wake(let_in: Vec<Arc<Connection>>) {
    for connection in let_in {
        connection.waker.wake();
    }
}

impl ClassIntake {
    /// Gives `waiter` a place if it still waits, and returns it to be woken (and, should it
    /// be the last handle, dropped) once the lock is released.
    fn let_in(&mut self, since: Instant, waiter: &Weak<Connection>) -> Option<Arc<Connection>> {
        let connection = waiter.upgrade()?;
        let waited = connection.state.compare_exchange(
            WAITING,
            reading(self.class),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if waited.is_ok() {
            self.taken += 1;
            connection.arrived().get_or_insert(since);
        }
        Some(connection)
    }
}

/// The state of a connection reading a request of `class` with a place.
fn reading(class: Class) -> u8 {
    match class {
        Class::Read => READING_READS,
        Class::Write => READING_WRITES,
    }
}

impl Connection {
    fn arrived(&self) -> MutexGuard<'_, Option<Instant>> {
        self.arrived.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a place of `class` for the request about to be read, or queues for one.
    fn take_place(&self, class: Class) -> bool {
        let mut state = self.intake.state();
        let places = &mut state[class as usize];
        if places.taken < places.limit {
            places.taken += 1;
            self.state.store(reading(class), Ordering::Release);
            self.arrived().get_or_insert_with(Instant::now);
            return true;
        }
        self.state.store(WAITING, Ordering::Release);
        places.waiting.push_back((Instant::now(), self.me.clone()));
        false
    }

    /// Waits for the next request's first bytes (in `leftover`, or on `stream`) and a place
    /// for it; `false` if the client closed the connection instead.
    pub async fn next_request(&self, stream: &TcpStream, leftover: &Bytes) -> io::Result<bool> {
        self.state.store(IDLE, Ordering::Release);
        let class = match (leftover.first(), self.guessed_class()) {
            (Some(&first), _) => Class::of_first_byte(first),
            (None, Some(class)) => {
                stream.readable().await?;
                class
            }
            (None, None) => {
                let mut first = [0u8; 1];
                if stream.peek(&mut first).await? == 0 {
                    return Ok(false);
                }
                Class::of_first_byte(first[0])
            }
        };
        if !self.take_place(class) {
            std::future::poll_fn(|cx| {
                self.waker.register(cx.waker());
                match self.state.load(Ordering::Acquire) {
                    WAITING => Poll::Pending,
                    _ => Poll::Ready(()),
                }
            })
            .await;
        }
        Ok(true)
    }

    /// The class of the connection's last request, if it has made one.
    fn guessed_class(&self) -> Option<Class> {
        Class::from_code(self.last_class.load(Ordering::Relaxed))
    }

    /// Gives back the place this connection holds while reading, if it holds one.
    fn give_back_reading_place(&self) {
        for class in [Class::Read, Class::Write] {
            if self
                .state
                .compare_exchange(reading(class), IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.intake.give_back(class);
                return;
            }
        }
    }

    /// The request just read is being answered: it takes over the connection's place, which
    /// the returned ticket gives back when dropped. Also when the request began to wait, and
    /// the request with its body observed.
    pub fn answering(
        self: &Arc<Self>,
        request: hyper::Request<Incoming>,
    ) -> (AnswerTicket, Instant, hyper::Request<ObservedBody>) {
        let kept_alive = match request.version() {
            Version::HTTP_11 => !has_token(request.headers(), "close"),
            Version::HTTP_10 => has_token(request.headers(), "keep-alive"),
            _ => false,
        };
        let read = request.body().is_end_stream();
        let (ticket, arrived) = self.answer(request.method(), kept_alive, read);
        let request = request.map(|body| ObservedBody {
            body,
            connection: self.clone(),
        });
        (ticket, arrived, request)
    }

    /// `answering` for a request of `method`, whose body has been `read` to its end or not. A
    /// place taken on a wrong guess of the class is traded for one of the method's class, over
    /// the limit if need be: the request has been read.
    fn answer(
        self: &Arc<Self>,
        method: &Method,
        kept_alive: bool,
        read: bool,
    ) -> (AnswerTicket, Instant) {
        let class = Class::of_method(method);
        self.last_class.store(class.code(), Ordering::Relaxed);
        let held = match self.state.swap(ANSWERING, Ordering::AcqRel) {
            READING_READS => Some(Class::Read),
            READING_WRITES => Some(Class::Write),
            _ => None,
        };
        let held = held.map(|guessed| {
            if guessed != class {
                self.intake.state()[class as usize].taken += 1;
                self.intake.give_back(guessed);
            }
            class
        });
        self.exchange_can_end.store(read, Ordering::Release);
        let arrived = self.arrived().take().unwrap_or_else(Instant::now);
        let ticket = AnswerTicket {
            connection: self.clone(),
            held,
            kept_alive,
        };
        (ticket, arrived)
    }
}

/// Whether the `Connection` header lists `token`.
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|listed| listed.trim().eq_ignore_ascii_case(token))
}

/// A request's body that tells its connection when it has been read to its end.
pub struct ObservedBody {
    body: Incoming,
    connection: Arc<Connection>,
}

impl Body for ObservedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.connection
                .exchange_can_end
                .store(true, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.give_back_reading_place();
    }
}

/// A request's intake place, held until its answer is made.
pub struct AnswerTicket {
    connection: Arc<Connection>,
    held: Option<Class>,
    kept_alive: bool,
}

impl Drop for AnswerTicket {
    fn drop(&mut self) {
        let read_to_end = self.connection.exchange_can_end.load(Ordering::Acquire);
        let next = if self.kept_alive && read_to_end {
            SENDING
        } else {
            IDLE
        };
        let _ = self.connection.state.compare_exchange(
            ANSWERING,
            next,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if let Some(class) = self.held {
            self.connection.intake.give_back(class);
        }
    }
}

/// A connection's socket for one exchange: read only with an intake place (see the module's
/// comment), and ended, as if the client had finished, once the request has been answered.
/// hyper then lets go of the connection with its buffers, and `server` takes the socket back
/// (`into_reusable`) to wait for the next request without them.
pub struct IntakeStream {
    stream: TcpStream,
    connection: Arc<Connection>,
    /// Bytes read beyond the last request (a pipelined next one), served before the socket's.
    leftover: Bytes,
    /// The exchange is over: the end was served after the answer.
    exchanged: bool,
    /// The client closed its end.
    closed: bool,
}

impl IntakeStream {
    pub fn new(stream: TcpStream, connection: Arc<Connection>, leftover: Bytes) -> Self {
        Self {
            stream,
            connection,
            leftover,
            exchanged: false,
            closed: false,
        }
    }

    /// The socket and the bytes hyper read but did not use, if the connection can carry
    /// another request: the exchange ended after an answer and the client is still there.
    /// The bytes are copied out of hyper's read buffer (usually there are none): as a slice
    /// of it, even an empty one, they would keep its 8 KiB while the connection waits.
    pub fn into_reusable(self, unused: Bytes) -> Option<(TcpStream, Bytes)> {
        (self.exchanged && !self.closed).then(|| (self.stream, Bytes::copy_from_slice(&unused)))
    }

    /// Whether the connection may read now; else it is woken when it may.
    fn poll_place(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let connection = &self.connection;
        match connection.state.load(Ordering::Acquire) {
            READING_READS | READING_WRITES | ANSWERING | SENDING => return Poll::Ready(Ok(())),
            WAITING => {
                connection.waker.register(cx.waker());
                return match connection.state.load(Ordering::Acquire) {
                    WAITING => Poll::Pending,
                    _ => Poll::Ready(Ok(())),
                };
            }
            _ => {}
        }
        // Idle: wait for bytes. Their class is the last request's, else peeked at.
        let class = match connection.guessed_class() {
            Some(class) => {
                if self.stream.poll_read_ready(cx)?.is_pending() {
                    return Poll::Pending;
                }
                class
            }
            None => {
                let mut first = [0u8; 1];
                let mut peeked = ReadBuf::new(&mut first);
                match self.stream.poll_peek(cx, &mut peeked)? {
                    Poll::Pending => return Poll::Pending,
                    // End of stream: the read tells hyper, no place needed.
                    Poll::Ready(0) => return Poll::Ready(Ok(())),
                    Poll::Ready(_) => Class::of_first_byte(first[0]),
                }
            }
        };
        connection.waker.register(cx.waker());
        if connection.take_place(class) {
            return Poll::Ready(Ok(()));
        }
        // Let in between taking the lock and now.
        match connection.state.load(Ordering::Acquire) {
            WAITING => Poll::Pending,
            _ => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncRead for IntakeStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.connection.state.load(Ordering::Acquire) == ANSWERED {
            this.exchanged = true;
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(this.poll_place(cx))?;
        if !this.leftover.is_empty() {
            let count = this.leftover.len().min(buf.remaining());
            buf.put_slice(&this.leftover.split_to(count));
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        match &read {
            // Nothing more to read yet: a slow client holds no place between its bytes.
            Poll::Pending => this.connection.give_back_reading_place(),
            Poll::Ready(Ok(())) if buf.filled().len() == before => {
                this.closed = true;
                this.connection.give_back_reading_place();
            }
            Poll::Ready(_) => {}
        }
        read
    }
}

impl AsyncWrite for IntakeStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.stream).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            let _ = self.connection.state.compare_exchange(
                SENDING,
                ANSWERED,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const BUDGET_MS: u32 = 300;

    /// One write slot, so four places for writes; reads have 1,024.
    fn intake() -> Intake {
        Intake::new(&ServerSettings {
            max_concurrent_writes: NonZeroU32::new(1).expect("non-zero"),
            queue_budget_ms: NonZeroU32::new(BUDGET_MS).expect("non-zero"),
            ..ServerSettings::default()
        })
    }

    /// A client that has sent `request`, and the server's end of its connection.
    async fn connected(
        listener: &TcpListener,
        intake: &Intake,
        request: &str,
    ) -> (TcpStream, IntakeStream, Arc<Connection>) {
        let address = listener.local_addr().expect("address");
        let (client, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
        let mut client = client.expect("connect");
        let (server, _) = accepted.expect("accept");
        client
            .write_all(request.as_bytes())
            .await
            .expect("send the request");
        let connection = intake.connection();
        let stream = IntakeStream::new(server, connection.clone(), Bytes::new());
        (client, stream, connection)
    }

    /// What the server reads within `wait`, if anything.
    async fn read_within(stream: &mut IntakeStream, wait: Duration) -> Option<String> {
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(wait, stream.read(&mut buffer)).await;
        let count = read.ok()?.expect("read");
        Some(String::from_utf8_lossy(&buffer[..count]).into_owned())
    }

    /// Asserts that the server reads `expected` (a request let in) soon.
    async fn assert_reads(stream: &mut IntakeStream, expected: &str, why: &str) {
        let read = read_within(stream, Duration::from_secs(5)).await;
        assert_eq!(read.as_deref(), Some(expected), "{why}");
    }

    /// Four writes read and being answered: every write place is taken.
    async fn four_writes_answering(
        listener: &TcpListener,
        intake: &Intake,
    ) -> Vec<(TcpStream, IntakeStream, AnswerTicket)> {
        let mut answering = Vec::new();
        for _ in 0..4 {
            let (client, mut stream, connection) = connected(listener, intake, "POST /").await;
            let read = read_within(&mut stream, Duration::from_secs(5)).await;
            assert_eq!(read.as_deref(), Some("POST /"));
            answering.push((
                client,
                stream,
                connection.answer(&Method::POST, true, true).0,
            ));
        }
        answering
    }

    #[tokio::test]
    async fn a_write_past_its_places_waits_unread_while_reads_go_on() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let intake = intake();
        let mut answering = four_writes_answering(&listener, &intake).await;

        let (_client, mut waiting, _) = connected(&listener, &intake, "POST /x").await;
        assert_eq!(
            read_within(&mut waiting, Duration::from_millis(100)).await,
            None,
            "a fifth write is not read while four are being answered"
        );
        let (_reader, mut reading, _) = connected(&listener, &intake, "GET /slots").await;
        assert_reads(&mut reading, "GET /slots", "a read has places of its own").await;

        // One answer made: its place goes to the waiting write.
        drop(answering.pop());
        assert_reads(&mut waiting, "POST /x", "let in").await;
    }

    #[tokio::test]
    async fn a_waiter_is_let_in_over_the_limit_at_its_budget_and_its_wait_counts() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let intake = intake();
        let overdue = tokio::spawn(intake.clone().let_in_overdue_forever());
        let _answering = four_writes_answering(&listener, &intake).await;

        let (_client, mut waiting, connection) = connected(&listener, &intake, "POST /x").await;
        let began = Instant::now();
        let read = read_within(&mut waiting, Duration::from_secs(5)).await;
        assert_eq!(
            read.as_deref(),
            Some("POST /x"),
            "let in although no place came free"
        );
        assert!(began.elapsed() >= Duration::from_millis(BUDGET_MS.into()));
        let (_place, arrived) = connection.answer(&Method::POST, true, true);
        assert!(
            arrived.elapsed() >= Duration::from_millis(BUDGET_MS.into()),
            "admission counts the wait from when it began: past the budget, so shed at once"
        );
        overdue.abort();
    }

    #[tokio::test]
    async fn an_idle_connection_holds_no_place() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let intake = intake();
        let mut idle = Vec::new();
        for _ in 0..4 {
            let (client, mut stream, _) = connected(&listener, &intake, "").await;
            assert_eq!(
                read_within(&mut stream, Duration::from_millis(20)).await,
                None
            );
            idle.push((client, stream));
        }
        // A client that sent part of a head and went quiet holds none either.
        let (_slow, mut slow, _) = connected(&listener, &intake, "POST /pa").await;
        assert_reads(&mut slow, "POST /pa", "let in").await;
        assert_eq!(
            read_within(&mut slow, Duration::from_millis(20)).await,
            None
        );

        let _answering = four_writes_answering(&listener, &intake).await;
    }

    #[tokio::test]
    async fn a_request_of_the_other_class_trades_its_place_for_one_of_its_own() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let intake = intake();
        let mut answering = four_writes_answering(&listener, &intake).await;
        // A connection whose last request read sends a write: let in on the guess that it
        // reads again, it takes a fifth write place once its method is known.
        let (mut switching, mut switched, connection) =
            connected(&listener, &intake, "GET /").await;
        read_within(&mut switched, Duration::from_secs(5)).await;
        drop(connection.answer(&Method::GET, true, true));
        switched
            .write_all(b"HTTP/1.1 200 OK")
            .await
            .expect("answer");
        switched.flush().await.expect("answer");
        assert_reads(
            &mut switched,
            "",
            "once the answer is written, the exchange ends",
        )
        .await;
        let (socket, leftover) = switched
            .into_reusable(Bytes::new())
            .expect("the client is still there");
        switching.write_all(b"POST /y").await.expect("send");
        let next = connection.next_request(&socket, &leftover).await;
        assert!(next.expect("readable"), "a request came");
        let mut switched = IntakeStream::new(socket, connection.clone(), leftover);
        let read = read_within(&mut switched, Duration::from_secs(5)).await;
        assert_eq!(read.as_deref(), Some("POST /y"));
        let (traded, _) = connection.answer(&Method::POST, true, true);

        let (_client, mut waiting, _) = connected(&listener, &intake, "POST /x").await;
        drop(answering.pop());
        assert_eq!(
            read_within(&mut waiting, Duration::from_millis(100)).await,
            None,
            "five write places were taken: one given back leaves none"
        );
        drop(traded);
        assert_reads(&mut waiting, "POST /x", "let in").await;
    }
}
