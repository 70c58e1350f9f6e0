//! The operator console's HTML without a browser: the pages carry the server's own data
//! (status, calendar, a day's slots, a slot's postings), escape every value, and come with a
//! Content-Security-Policy and no inline script. The browser test (`tests/console.rs`) drives
//! the same pages in Chromium.

mod common;

use common::{ADMIN_TOKEN, TestApp, backends, spawn_app};
use serde_json::json;

struct Page {
    status: u16,
    csp: Option<String>,
    html: String,
}

async fn page(app: &TestApp, path: &str) -> Page {
    let response = app
        .http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("server answers");
    let status = response.status().as_u16();
    let csp = response
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().expect("ASCII").to_string());
    Page {
        status,
        csp,
        html: response.text().await.expect("a body"),
    }
}

/// The text of the element that follows `marker` (up to the next tag).
fn text_after<'a>(html: &'a str, marker: &str) -> &'a str {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in the page"));
    let rest = &html[start + marker.len()..];
    let open = rest.find('>').expect("the tag ends") + 1;
    let rest = &rest[open..];
    &rest[..rest.find('<').expect("the text ends")]
}

fn assert_secure(page: &Page) {
    let csp = page.csp.as_deref().expect("a Content-Security-Policy");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // Scripts only from files: every <script> has a src.
    for (index, _) in page.html.match_indices("<script") {
        let tag = &page.html[index..index + page.html[index..].find('>').expect("tag ends")];
        assert!(tag.contains(" src="), "an inline script: {tag}");
    }
    assert!(
        !page.html.contains(ADMIN_TOKEN),
        "the admin token is in the page"
    );
}

#[tokio::test]
async fn the_console_renders_the_servers_data_escaped() {
    for backend in backends().await {
        let name = backend.name;
        let app = spawn_app(backend).await;
        let (first, last) = (app.today(), app.today() + chrono::Days::new(13));
        let summary = app.sync(first, last).await;
        assert!(summary.failed.is_empty(), "{name}: {summary:?}");

        // `/` leads to the console.
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(format!("{}/", app.base))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), 303, "{name}");
        assert_eq!(response.headers()["location"], "/console", "{name}");

        // The status as the API reports it, with a reason that is markup.
        let reason = r#"<script>alert("INC-7")</script> & co"#;
        let (code, _) = app
            .post(
                "/api/v1/sync/pause",
                Some(ADMIN_TOKEN),
                Some(json!({ "reason": reason })),
            )
            .await;
        assert_eq!(code, 200, "{name}");
        let console = page(&app, "/console").await;
        assert_eq!(console.status, 200, "{name}");
        assert_secure(&console);
        let html = &console.html;
        assert!(
            html.contains(r#"data-state="paused""#),
            "{name}: not shown paused"
        );
        assert!(
            html.contains("&lt;script&gt;alert(&quot;INC-7&quot;)&lt;/script&gt; &amp; co"),
            "{name}: the reason is not shown escaped"
        );
        assert!(
            !html.contains("<script>alert"),
            "{name}: the reason was rendered as markup"
        );
        let (_, status) = app.get("/api/v1/sync/status").await;
        let instance = status["instance"].as_str().expect("instance");
        assert!(html.contains(instance), "{name}: instance not shown");
        let limit = status["rateLimitPerMinute"].as_u64().expect("limit");
        assert!(html.contains(&format!("limit {limit}/min")), "{name}");
        for tier in status["tiers"].as_array().expect("tiers") {
            let tier = tier["name"].as_str().expect("tier name");
            assert!(html.contains(&format!(">{tier}<")), "{name}: tier {tier}");
        }
        // The fragment the page refreshes with says the same, escaped too.
        let fragment = page(&app, "/console/status").await;
        assert!(fragment.html.contains("&lt;script&gt;alert("), "{name}");
        assert!(!fragment.html.contains("<script>alert"), "{name}");

        // The calendar: every sellable date of /dates with its from-price and the seats /slots
        // serves that day.
        for experience in [14, 15] {
            let (_, dates) = app
                .get(&format!("/api/v1/experience/{experience}/dates"))
                .await;
            let dates = dates["dates"].as_array().expect("dates").clone();
            for date in dates
                .iter()
                .filter(|d| d["date"].as_str().expect("date") <= last.to_string().as_str())
            {
                let day = date["date"].as_str().expect("date");
                let (_, slots) = app
                    .get(&format!("/api/v1/experience/{experience}/slots?date={day}"))
                    .await;
                let seats: i64 = slots
                    .as_array()
                    .expect("slots")
                    .iter()
                    .map(|s| s["remaining"].as_i64().expect("remaining").max(0))
                    .sum();
                let cell = format!(
                    r#"class="day open" href="/console/experience/{experience}/{day}" data-experience="{experience}" data-date="{day}" data-seats="{seats}""#
                );
                assert!(html.contains(&cell), "{name}: no cell {cell}");
                let price = format!(
                    "from {} {}",
                    date["price"]["currencyCode"].as_str().expect("currency"),
                    date["price"]["finalPrice"]
                );
                let cell_at = html.find(&cell).expect("cell");
                let cell_html =
                    &html[cell_at..cell_at + html[cell_at..].find("</a>").expect("end")];
                assert!(
                    cell_html.contains(&price),
                    "{name}: {price} not in {cell_html}"
                );
            }
        }

        // A day with slots: the remaining of /slots, slot and pax level.
        let (_, dates) = app.get("/api/v1/experience/14/dates").await;
        let day = dates["dates"][0]["date"]
            .as_str()
            .expect("a sellable day of 14")
            .to_string();
        let (_, slots) = app
            .get(&format!("/api/v1/experience/14/slots?date={day}"))
            .await;
        let day_page = page(&app, &format!("/console/experience/14/{day}")).await;
        assert_eq!(day_page.status, 200, "{name}");
        assert_secure(&day_page);
        for slot in slots.as_array().expect("slots") {
            let start = slot["startTime"].as_str().expect("start");
            let row_at = day_page
                .html
                .find(&format!(r#"data-start-time="{start}""#))
                .unwrap_or_else(|| panic!("{name}: no row for {start}"));
            let row = &day_page.html[row_at..];
            assert_eq!(
                text_after(row, r#"class="remaining"#),
                slot["remaining"].to_string(),
                "{name}: {day} {start}"
            );
            for pax in slot["paxAvailability"].as_array().expect("pax") {
                let pax_at = row
                    .find(&format!(
                        r#"data-pax-type="{}""#,
                        pax["type"].as_str().expect("type")
                    ))
                    .expect("pax row");
                assert_eq!(
                    text_after(&row[pax_at..], r#"class="pax-remaining""#),
                    pax["remaining"].to_string(),
                    "{name}: {day} {start} {}",
                    pax["type"]
                );
            }
        }

        // A slot's history: one chart point per posting, each linked to its row.
        let start = slots[0]["startTime"].as_str().expect("start");
        let (_, history) = app
            .get(&format!(
                "/api/v1/experience/14/slots/history?date={day}&startTime={start}"
            ))
            .await;
        let postings = history["postings"].as_array().expect("postings");
        assert!(!postings.is_empty(), "{name}");
        let slot_page = page(&app, &format!("/console/experience/14/{day}/{start}")).await;
        assert_eq!(slot_page.status, 200, "{name}");
        assert_secure(&slot_page);
        assert_eq!(
            slot_page.html.matches(r#"class="point""#).count(),
            postings.len(),
            "{name}: points"
        );
        for (index, posting) in postings.iter().enumerate() {
            assert!(
                slot_page
                    .html
                    .contains(&format!(r##"href="#posting-{index}""##)),
                "{name}: point {index} not linked"
            );
            if let Some(fetch) = posting["fetchId"].as_str() {
                assert!(slot_page.html.contains(fetch), "{name}: fetch {fetch}");
            }
        }

        // Errors are pages too, and what the path said is escaped.
        let unknown = page(&app, "/console/experience/%3Cb%3Ex/2026-01-01").await;
        assert_eq!(unknown.status, 400, "{name}");
        assert!(unknown.html.contains("&lt;b&gt;x"), "{name}");
        assert!(!unknown.html.contains("<b>x"), "{name}");
        assert_secure(&unknown);
        let outside = page(&app, "/console/experience/14/1999-01-01").await;
        assert_eq!(outside.status, 400, "{name}");
        let not_synced = page(&app, &format!("/console/experience/99/{day}")).await;
        assert_eq!(not_synced.status, 404, "{name}");

        // The embedded assets.
        for (path, kind) in [
            ("/console/assets/console.js", "text/javascript"),
            ("/console/assets/console.css", "text/css"),
        ] {
            let response = app
                .http
                .get(format!("{}{path}", app.base))
                .send()
                .await
                .expect("answers");
            assert_eq!(response.status().as_u16(), 200, "{path}");
            let content_type = response.headers()["content-type"].to_str().expect("ASCII");
            assert!(content_type.starts_with(kind), "{path}: {content_type}");
        }
        let script = page(&app, "/console/assets/console.js").await.html;
        assert!(script.contains("sessionStorage"), "{name}");
        assert!(
            !script.contains("localStorage") && !script.contains("document.cookie"),
            "{name}: the token must not outlive the tab"
        );
    }
}
