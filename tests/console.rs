//! The operator console in a real headless Chromium, driven over WebDriver (chromedriver):
//! the daemon runs against the built-in simulator on port 0, and an operator's session is
//! played through the page — watch, pause with a reason, a wrong token, resume, trigger, open
//! a day and a slot's history — each checked against the JSON API. The test saves the
//! screenshot the README shows (`docs/console.png`).
//!
//! It needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`;
//! `.ci/run` installs them), or `CHROME_BIN` and `CHROMEDRIVER` pointing at them. Without them
//! it fails under `CI=true` and is skipped with a loud warning otherwise.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, TestApp, drained, spawn_daemon, sqlite_store};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long the page gets to show what the test waits for.
const PATIENCE: Duration = Duration::from_secs(20);

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn find_tool(variable: &str, names: &[&str]) -> Option<PathBuf> {
    match std::env::var_os(variable) {
        Some(path) => Some(PathBuf::from(path)).filter(|path| path.is_file()),
        None => on_path(names),
    }
}

/// Chromium and chromedriver, or `None` when this machine lacks them outside CI.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let chrome = find_tool(
        "CHROME_BIN",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = find_tool("CHROMEDRIVER", &["chromedriver"]);
    match (chrome, driver) {
        (Some(chrome), Some(driver)) => Some((chrome, driver)),
        (chrome, driver) => {
            let missing = format!(
                "{}{}",
                if chrome.is_none() { "chromium " } else { "" },
                if driver.is_none() { "chromedriver" } else { "" }
            );
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                panic!(
                    "the console's browser test needs {missing}; with CI=true it must run: \
                     apt-get install chromium chromium-driver (or set CHROME_BIN, CHROMEDRIVER)"
                );
            }
            let banner = "!".repeat(78);
            let _ = writeln!(
                std::io::stderr(),
                "\n{banner}\nWARNING: the console's browser test is SKIPPED: {missing} not found.\n\
                 Install them (apt-get install chromium chromium-driver) or set CHROME_BIN and \
                 CHROMEDRIVER.\n{banner}\n"
            );
            None
        }
    }
}

/// chromedriver on a free port, in a process group of its own: dropping it kills the driver
/// and every browser it started, whatever the test did.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.child.id()) {
            // SAFETY: signals the process group this test created for its chromedriver.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

async fn start_driver(driver: &Path) -> Driver {
    use std::os::unix::process::CommandExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        port,
        _profile: tempfile::tempdir().expect("a profile directory"),
    };
    let started = Instant::now();
    while reqwest::get(format!("http://127.0.0.1:{port}/status"))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < PATIENCE,
            "chromedriver did not answer on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver
}

async fn open_browser(chrome: &Path, driver: &Driver) -> Client {
    let profile = driver._profile.path().display().to_string();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chrome.display().to_string(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,1500", "--hide-scrollbars",
                format!("--user-data-dir={profile}"),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

/// Runs `script` in the page until `done` holds on its value.
async fn wait_js(
    client: &Client,
    script: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let value = client.execute(script, vec![]).await.unwrap_or(Value::Null);
        if done(&value) {
            return value;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "waited {PATIENCE:?} for {what}; the page said {value}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(client: &Client, selector: &str) -> Value {
    client
        .execute(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            vec![json!(selector)],
        )
        .await
        .expect("script runs")
}

async fn wait_text(client: &Client, selector: &str, expected: &str) {
    let script = format!(
        "const e = document.querySelector({}); return e ? e.textContent : null;",
        json!(selector)
    );
    wait_js(
        client,
        &script,
        &format!("{selector} to say {expected:?}"),
        |v| v.as_str().is_some_and(|text| text.contains(expected)),
    )
    .await;
}

async fn click(client: &Client, selector: &str) {
    client
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {selector}: {e}"));
}

async fn type_into(client: &Client, selector: &str, text: &str) {
    let field = client
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn api_status(app: &TestApp) -> Value {
    app.get("/api/v1/sync/status").await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_pauses_resumes_and_reads_a_slots_story_in_chromium() {
    let Some((chrome, driver_path)) = browser_tools() else {
        return;
    };
    let app = spawn_daemon(sqlite_store().await).await;
    app.wait_for_status(Duration::from_secs(60), drained).await;
    let driver = start_driver(&driver_path).await;
    let client = open_browser(&chrome, &driver).await;
    let result = session(&app, &client).await;
    let _ = client.close().await;
    drop(driver);
    result.expect("the browser session");
}

async fn session(app: &TestApp, client: &Client) -> Result<(), fantoccini::error::CmdError> {
    let console = format!("{}/", app.base);
    client.goto(&console).await?;
    // `/` redirected to the console, which shows the sync running.
    assert!(client.current_url().await?.as_str().ends_with("/console"));
    wait_text(client, "#sync-state", "Running").await;
    let (_, status) = app.get("/api/v1/sync/status").await;
    wait_text(client, "#sync-role", status["role"].as_str().expect("role")).await;

    // The token is asked once; pausing with a reason shows it paused, with the reason.
    let reason = "partner incident INC-42 <b>not bold</b>";
    type_into(client, "#admin-token", ADMIN_TOKEN).await;
    type_into(client, "#pause-reason", reason).await;
    click(client, "#pause-button").await;
    wait_text(client, "#sync-state", "Paused").await;
    wait_text(client, "#pause-reason-shown", reason).await;
    wait_text(client, "#control-result", "Paused").await;
    let status = api_status(app).await;
    assert_eq!(status["state"], "paused", "{status}");
    assert_eq!(status["pauseReason"], reason, "{status}");

    // Where the token is, and is not.
    let kept = client
        .execute(
            "return [sessionStorage.getItem('invsync.adminToken'), localStorage.length, \
             document.cookie, location.href, document.documentElement.outerHTML, \
             document.getElementById('token-kept').hidden, \
             document.getElementById('admin-token').value];",
            vec![],
        )
        .await?;
    assert_eq!(kept[0], ADMIN_TOKEN, "kept in sessionStorage");
    assert_eq!(kept[1], 0, "nothing in localStorage");
    assert_eq!(kept[2], "", "no cookie");
    assert!(!kept[3].as_str().expect("url").contains(ADMIN_TOKEN));
    assert!(!kept[4].as_str().expect("html").contains(ADMIN_TOKEN));
    assert_eq!(kept[5], false, "the page says the token is kept");
    assert_eq!(kept[6], "", "the field is emptied");

    // A wrong token says so plainly and changes nothing: still paused, same reason.
    click(client, "#forget-token").await;
    type_into(client, "#admin-token", "not-the-admin-token").await;
    click(client, "#resume-button").await;
    wait_text(client, "#control-error", "Wrong admin token").await;
    let status = api_status(app).await;
    assert_eq!(
        status["state"], "paused",
        "a wrong token changed it: {status}"
    );
    assert_eq!(status["pauseReason"], reason, "{status}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        text_of(client, "#sync-state")
            .await
            .as_str()
            .is_some_and(|text| text.contains("Paused"))
    );
    let forgotten = client
        .execute(
            "return sessionStorage.getItem('invsync.adminToken');",
            vec![],
        )
        .await?;
    assert_eq!(forgotten, Value::Null, "a refused token is not kept");

    // Resume with the right token.
    type_into(client, "#admin-token", ADMIN_TOKEN).await;
    click(client, "#resume-button").await;
    wait_text(client, "#sync-state", "Running").await;
    wait_text(client, "#control-result", "Resumed").await;
    assert_eq!(api_status(app).await["state"], "running");
    wait_js(
        client,
        "return document.getElementById('control-error').textContent;",
        "the error to clear",
        |v| v == "",
    )
    .await;

    // Trigger a re-sync of one experience's horizon.
    client
        .find(Locator::Css("#trigger-experience"))
        .await?
        .select_by_value("14")
        .await?;
    click(client, "#trigger-button").await;
    wait_text(client, "#control-result", "Queued").await;

    // The screenshot the README shows: the overview, running, after a trigger.
    let png = client.screenshot().await?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console.png");
    std::fs::create_dir_all(path.parent().expect("docs")).expect("docs/");
    std::fs::write(&path, &png).expect("save the screenshot");
    assert!(
        png.len() < 600 * 1024,
        "the screenshot is {} bytes",
        png.len()
    );

    // A day from the calendar shows what /slots serves.
    let day = client
        .find(Locator::Css(r#"a.day.open[data-experience="14"]"#))
        .await?;
    let date = day.attr("data-date").await?.expect("the cell's date");
    day.click().await?;
    wait_js(
        client,
        "return document.getElementById('day-heading') !== null;",
        "the day view",
        |v| v == true,
    )
    .await;
    let (_, slots) = app
        .get(&format!("/api/v1/experience/14/slots?date={date}"))
        .await;
    let slots = slots.as_array().expect("slots").clone();
    assert!(!slots.is_empty(), "an open day has slots");
    let shown = client
        .execute(
            "return Array.from(document.querySelectorAll('tr.slot')).map(row => ({ \
               start: row.dataset.startTime, \
               remaining: Number(row.querySelector('td.remaining').textContent), \
               pax: Array.from(row.querySelectorAll('tr.pax')).map(p => \
                 [p.dataset.paxType, Number(p.querySelector('td.pax-remaining').textContent)]) }));",
            vec![],
        )
        .await?;
    let expected: Vec<Value> = slots
        .iter()
        .map(|slot| {
            json!({
                "start": slot["startTime"],
                "remaining": slot["remaining"],
                "pax": slot["paxAvailability"].as_array().expect("pax").iter()
                    .map(|pax| json!([pax["type"], pax["remaining"]]))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    assert_eq!(shown, Value::Array(expected), "the day view against /slots");

    // A slot's history: one chart point per posting.
    let start = slots[0]["startTime"].as_str().expect("start");
    click(
        client,
        &format!(r#"tr.slot[data-start-time="{start}"] a.history-link"#),
    )
    .await;
    wait_js(
        client,
        "return document.getElementById('slot-heading') !== null;",
        "the slot's history",
        |v| v == true,
    )
    .await;
    let (_, history) = app
        .get(&format!(
            "/api/v1/experience/14/slots/history?date={date}&startTime={start}"
        ))
        .await;
    let postings = history["postings"].as_array().expect("postings").len();
    assert!(postings > 0);
    let points = client
        .execute(
            "return document.querySelectorAll('svg.history-chart circle.point').length;",
            vec![],
        )
        .await?;
    assert_eq!(points, json!(postings), "one point per posting");
    let linked = client
        .execute(
            "return Array.from(document.querySelectorAll('svg.history-chart a')).every(a => \
               document.getElementById(a.getAttribute('href').slice(1)) !== null);",
            vec![],
        )
        .await?;
    assert_eq!(linked, true, "each point links to its posting's row");
    Ok(())
}
