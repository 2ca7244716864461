//! `/dashboard`: the page for people, rendered on the server (no script, no
//! build step). With a project's long-lived link (`?project_id=…&token=…`,
//! from `dashboard_url`) it shows open pains, wins and regressions; every
//! view carries the "Lost your key?" form, which posts to `/v1/recover`.
//!
//! Invariant: every value from the database or the request is HTML-escaped.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::error::Report;
use crate::loopkit::keys;
use crate::loopkit::window::Window;
use crate::serve::{AppState, blocking, insight, now_ns};

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

pub fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{}</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>{}</style></head><body>
{}
</body></html>"#,
        esc(title),
        crate::serve::headers::PAGE_STYLE,
        body
    )
}

fn recovery_form() -> &'static str {
    r#"<h2 id="recover">Lost your key?</h2>
<p>Keys are shown once and stored only as hashes. With your <code>project_id</code> and <code>recovery_code</code>
you can rotate fresh keys; the old keys stop working at once.</p>
<form method="post" action="/v1/recover">
<label for="project_id">project_id</label><input id="project_id" name="project_id" required placeholder="prj_…">
<label for="recovery_code">recovery_code</label><input id="recovery_code" name="recovery_code" required autocomplete="off" placeholder="64 hex characters">
<button type="submit">Rotate my keys</button>
</form>"#
}

#[derive(Deserialize, Default)]
struct PageQuery {
    project_id: Option<String>,
    token: Option<String>,
    window: Option<String>,
}

pub async fn dashboard(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let bad = |why: String| {
        (
            StatusCode::BAD_REQUEST,
            Html(layout("Bad link", &format!("<p class=err>{}</p>{}", esc(&why), recovery_form()))),
        )
            .into_response()
    };
    let q: PageQuery = match serde_urlencoded::from_str(raw.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return bad(format!("the link's query is not understood: {e}")),
    };
    let w = match q.window.as_deref().map(Window::parse).transpose() {
        Ok(w) => w.unwrap_or_else(Window::default_window),
        Err(e) => return bad(e.to_string()),
    };
    let (Some(id), Some(token)) = (q.project_id, q.token) else {
        let body = format!(
            "<h1>LoopKit dashboard</h1><p>Open the <code>dashboard_url</code> from your signup, provision or recovery response \
             to see your project's pains. Agents: read <a href=\"/agents.md\">/agents.md</a>.</p>{}",
            recovery_form()
        );
        return Html(layout("LoopKit dashboard", &body)).into_response();
    };
    let store = state.store.clone();
    let secret = state.secret.clone();
    let now = now_ns();
    let result = blocking(move || -> crate::serve::store::Result<_> {
        let Some(p) = store.project(&id)? else { return Ok(None) };
        let expected = keys::dashboard_token(secret.key(), &p.public_id, p.key_generation);
        if !keys::code_matches(&expected, &token) {
            return Ok(None);
        }
        let d = insight::dashboard(&store, &p, &w, now)?;
        let series = insight::pain_series(&store, &p, &w, now, 5)?;
        Ok(Some((d, series)))
    })
    .await;
    match result {
        Ok(Some((d, series))) => Html(render_with(&d, &series)).into_response(),
        Ok(None) => {
            let body = format!(
                "<h1>LoopKit dashboard</h1><p class=err>This dashboard link is not valid (a recovery replaces older links).</p>{}",
                recovery_form()
            );
            (StatusCode::UNAUTHORIZED, Html(layout("LoopKit dashboard", &body))).into_response()
        }
        Err(e) => {
            (e.status, Html(layout("Error", &format!("<p class=err>{}</p>", esc(&e.report.message))))).into_response()
        }
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// The dashboard JSON as a page, without the pains-over-time chart.
pub fn render(d: &Value) -> String {
    render_with(d, &(Vec::new(), Vec::new()))
}

/// The dashboard JSON as a page, with the top pains over time
/// ([`insight::pain_series`]) and the measured changes as charts.
pub fn render_with(d: &Value, series: &insight::PainSeries) -> String {
    let mut b = format!(
        "<h1>{} <span class=muted>({})</span></h1><p class=headline>{}</p><p class=muted>Last {} · {} spans · momentum {} · regression rate {}</p>",
        esc(&s(&d["project_name"])),
        esc(&s(&d["project_id"])),
        esc(&s(&d["value"]["headline"])),
        esc(&s(&d["window"]["label"])),
        esc(&s(&d["summary"]["spans"])),
        esc(&s(&d["value"]["momentum"])),
        esc(&s(&d["summary"]["regression_rate"])),
    );
    let (labels, pains) = series;
    if !pains.is_empty() {
        b.push_str("<h2>Pains over time</h2>");
        b.push_str(&crate::serve::chart::lines(
            "pains",
            "Spans of the top pains over time",
            &format!(
                "Failing spans of the {} most important open pains in {} buckets over the previous and the current window.",
                pains.len(),
                labels.len()
            ),
            "spans",
            None,
            &pains
                .iter()
                .map(|(title, counts)| crate::serve::chart::Line {
                    name: title.clone(),
                    points: labels.iter().cloned().zip(counts.iter().map(|&c| c as f64)).collect(),
                })
                .collect::<Vec<_>>(),
        ));
    }
    b.push_str("<h2>Open pains</h2>");
    let pains = d["open_pains"].as_array().cloned().unwrap_or_default();
    if pains.is_empty() {
        b.push_str("<p class=muted>No pains in this window.</p>");
    } else {
        b.push_str("<div class=scroll><table><tr><th>pain</th><th>signal</th><th>count</th><th>per 1,000</th><th>change</th></tr>");
        for p in pains {
            b.push_str(&format!(
                "<tr><td>{}<br><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s(&p["title"])),
                esc(&s(&p["pain_id"])),
                esc(&s(&p["signal_type"])),
                esc(&s(&p["count"])),
                esc(&s(&p["rate_per_1k"])),
                esc(&s(&p["change_percent"]))
            ));
        }
        b.push_str("</table></div>");
    }
    let measured: Vec<Value> =
        ["wins", "regressions_detail"].iter().flat_map(|k| d[*k].as_array().cloned().unwrap_or_default()).collect();
    if !measured.is_empty() {
        b.push_str("<h2>Wins and regressions</h2>");
        let categories: Vec<String> = measured
            .iter()
            .map(|c| {
                let outcome = if c["outcome"] == "held" { "won" } else { "slipped" };
                format!("{} ({outcome})", s(&c["title"]))
            })
            .collect();
        let rate = |k: &str| measured.iter().map(|c| c[k].as_f64().unwrap_or(0.0)).collect::<Vec<_>>();
        b.push_str(&crate::serve::chart::bars(
            "changes",
            "The rate of each targeted pain before its merge and now",
            &format!(
                "For each of {} measured merges: the pain's rate per 1,000 spans in the window before the merge and in the latest window.",
                measured.len()
            ),
            "per 1,000",
            &categories,
            &[
                crate::serve::chart::Bars { name: "before".into(), values: rate("before_rate_per_1k") },
                crate::serve::chart::Bars { name: "latest".into(), values: rate("latest_rate_per_1k") },
            ],
        ));
    }
    for (title, key) in [("Wins", "wins"), ("Regressions", "regressions_detail")] {
        b.push_str(&format!("<h2>{title}</h2>"));
        let items = d[key].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            b.push_str("<p class=muted>None measured yet.</p>");
            continue;
        }
        b.push_str("<div class=scroll><table><tr><th>pain</th><th>merged</th><th>before → latest (per 1,000)</th><th>change</th></tr>");
        for c in items {
            b.push_str(&format!(
                "<tr><td>{}<br><code>{}</code></td><td>{}</td><td>{} → {}</td><td>{}%</td></tr>",
                esc(&s(&c["title"])),
                esc(&s(&c["pain_id"])),
                esc(&s(&c["merged_at"])),
                esc(&s(&c["before_rate_per_1k"])),
                esc(&s(&c["latest_rate_per_1k"])),
                esc(&s(&c["change_percent"]))
            ));
        }
        b.push_str("</table></div>");
    }
    b.push_str(recovery_form());
    layout("LoopKit dashboard", &b)
}

/// `GET /recovered?ticket=…`: the result of a form recovery, shown once
/// (POST-redirect-GET, see [`crate::serve::once`]).
pub async fn recovered_page(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    #[derive(Deserialize, Default)]
    struct TicketQuery {
        ticket: Option<String>,
    }
    let q: TicketQuery = serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    match q.ticket.as_deref().and_then(|t| state.recovered.take(t)) {
        Some(crate::serve::once::Outcome::Rotated(v)) => Html(recovered(&v)).into_response(),
        Some(crate::serve::once::Outcome::Refused { status, report }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, Html(recovery_failed(&report))).into_response()
        }
        None => {
            let body = format!(
                "<h1>Nothing to show</h1><p>This result was already shown, or it expired (results are kept 10 minutes and shown once). \
                 If you did not copy your new keys, recover again: the code never changes.</p>{}",
                recovery_form()
            );
            (StatusCode::NOT_FOUND, Html(layout("Nothing to show", &body))).into_response()
        }
    }
}

/// The page after a successful recovery from the form: the keys, shown once.
pub fn recovered(v: &Value) -> String {
    let body = format!(
        "<h1>New keys for {}</h1><p>Copy them now: they are shown once. The old keys are revoked.</p>\
         <table><tr><th>producer_key</th><td><code>{}</code></td></tr><tr><th>agent_key</th><td><code>{}</code></td></tr></table>\
         <p><a href=\"{}\">Open your dashboard</a> (bookmark this link; it replaces the old one).</p>",
        esc(&s(&v["project_id"])),
        esc(&s(&v["producer_key"])),
        esc(&s(&v["agent_key"])),
        esc(&s(&v["dashboard_url"])),
    );
    layout("Keys rotated", &body)
}

pub fn recovery_failed(r: &Report) -> String {
    let body = format!(
        "<h1>Recovery failed</h1><p class=err>{}</p><p>{}</p>{}",
        esc(&r.message),
        esc(r.hint().unwrap_or("")),
        recovery_form()
    );
    layout("Recovery failed", &body)
}
