//! `/loop`: the page where people see the loop of the workspace `ratchet
//! serve` runs in, beside the LoopKit project dashboard (`/dashboard`).
//!
//! It shows [`crate::overview`]: utility over time, merges and human
//! decisions per day (human effort should fall), each provider's picks,
//! merges, reverts, slips and tier, the proposals waiting for a human with
//! their diffs, the watchdog, and the pains: open (from this server's
//! store, for the project whose agent key the workspace holds), targeted,
//! won and slipped (from the log).
//!
//! Who may see it: it shows diffs and rationales of a private repository,
//! so it is never public.
//! - A link token is required: HMAC-SHA256 of `loop:<workspace id>` under
//!   the server secret ([`crate::loopkit::keys::loop_token`]), printed by
//!   `ratchet serve` at start-up; a wrong or missing token is 401.
//! - Only clients on a loopback address are served, unless the server was
//!   started with `--loop-remote` (a remote client is 403).
//! - Like every page: `Cache-Control: no-store`, `Referrer-Policy:
//!   no-referrer` (the token never leaks through a link), a CSP with no
//!   script at all.
//!
//! Invariants: the page only reads (the log through
//! [`crate::journal::read_only`], never the journal's writer); every string
//! from the log, a pending file or the store is escaped ([`esc`]), and text
//! a provider wrote is shown with its control and invisible characters made
//! visible ([`crate::text::visible`]) before it is escaped.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::loopkit::keys;
use crate::overview::{Overview, PainState};
use crate::serve::auth::ClientIp;
use crate::serve::chart::{self, Bars, Line};
use crate::serve::page::{esc, layout};
use crate::serve::{AppState, blocking, insight, now_ns};
use crate::text::{Keep, visible};

#[derive(Deserialize, Default)]
struct LoopQuery {
    token: Option<String>,
}

/// An open pain of the workspace's project, as the page lists it.
pub struct OpenPain {
    pub pain_id: String,
    pub title: String,
    pub count: u64,
    pub rate: f64,
}

/// The link to the loop page of `ws` on a server whose secret is `secret`.
pub fn link(base: &str, secret: &[u8], ws: &crate::workspace::Workspace) -> String {
    format!("{base}/loop?token={}", keys::loop_token(secret, &ws.id()))
}

fn refuse(status: StatusCode, why: &str) -> Response {
    let body = format!(
        "<h1>The loop</h1><p class=err>{}</p><p>Open the loop link <code>ratchet serve</code> printed when it started \
         (it carries the token), from this machine.</p><p><a href=\"/dashboard\">The LoopKit dashboard</a></p>",
        esc(why)
    );
    (status, Html(layout("The loop", &body))).into_response()
}

pub async fn loop_page(State(state): State<AppState>, ClientIp(ip): ClientIp, RawQuery(raw): RawQuery) -> Response {
    let Some(ws) = state.config.workspace.clone() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "this server was not started in a ratchet workspace: there is no loop to show",
        );
    };
    if !state.config.loop_remote && ip.is_some_and(|ip| !ip.is_loopback()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "the loop page is served to this machine only (start the server with --loop-remote to allow others)",
        );
    }
    let q: LoopQuery = serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let expected = keys::loop_token(state.secret.key(), &ws.id());
    if !q.token.as_deref().is_some_and(|t| keys::code_matches(&expected, t)) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "this loop link is missing its token, or the token is not this server's",
        );
    }
    let store = state.store.clone();
    let now = now_ns();
    let result = blocking(move || -> Result<(Overview, Option<Vec<OpenPain>>), crate::serve::error::ApiError> {
        let overview = crate::overview::read(&ws)
            .map_err(|e| crate::serve::error::ApiError::coded(StatusCode::INTERNAL_SERVER_ERROR, &e))?;
        let open = open_pains(&store, &ws, now);
        Ok((overview, open))
    })
    .await;
    match result {
        Ok((overview, open)) => Html(render(&overview, open.as_deref())).into_response(),
        Err(e) => refuse(e.status, &e.report.message),
    }
}

/// The open pains of the project whose agent key the workspace holds
/// (`None` when it holds none this server knows).
fn open_pains(store: &crate::serve::store::Store, ws: &crate::workspace::Workspace, now: i64) -> Option<Vec<OpenPain>> {
    let rails = crate::rails::Rails::load(ws).ok()?;
    let lk = rails.loopkit.as_ref()?;
    let key = crate::loopkit::client::agent_key(ws, &lk.agent_key_env)?;
    keys::parse(&key).ok()?;
    let row = store.key(&keys::digest(&key)).ok()??;
    if row.revoked || row.kind != keys::KeyKind::Agent {
        return None;
    }
    let (pains, _, _) = insight::open_pains(store, &row.project, &lk.window, now).ok()?;
    Some(
        pains
            .into_iter()
            .map(|p| OpenPain { pain_id: p.row.pain_id, title: p.row.title, count: p.count, rate: p.rate })
            .collect(),
    )
}

/// Provider text, with invisible and control characters made visible, escaped.
fn shown(text: &str, keep: Keep) -> String {
    esc(&visible(text, keep).0)
}

/// The page.
pub fn render(o: &Overview, open: Option<&[OpenPain]>) -> String {
    let merges: u64 = o.days.iter().map(|d| d.merges).sum();
    let mut b = format!(
        "<h1>The loop</h1><p class=headline>{} steps · {} merged · {} waiting for a human · watchdog {}</p>\
         <p class=muted>Generated {} · <a href=\"/dashboard\">LoopKit dashboard</a></p>",
        o.steps,
        merges,
        o.pending.len(),
        if o.watchdog.alarm { "ALARM" } else { "ok" },
        esc(&o.generated)
    );

    b.push_str("<h2>Utility over time</h2>");
    if o.utility.is_empty() {
        b.push_str("<p class=muted>No scored step yet.</p>");
    }
    b.push_str(&chart::lines(
        "utility",
        "Utility of each scored step",
        &format!(
            "The utility of {} scored steps in log order, amendments (reverts, slipped verifications) applied; 0 to 1.",
            o.utility.len()
        ),
        "utility",
        Some(1.0),
        &[Line {
            name: "utility".into(),
            points: o
                .utility
                .iter()
                .map(|p| {
                    (
                        format!("{} {} ({}, {})", p.id, p.at, p.outcome.word(), visible(&p.provider, Keep::Nothing).0),
                        p.utility,
                    )
                })
                .collect(),
        }],
    ));

    b.push_str("<h2>Merges and human decisions per day</h2>");
    let days: Vec<String> = o.days.iter().map(|d| d.date.clone()).collect();
    b.push_str(&chart::bars(
        "days",
        "Merges and human decisions per day",
        &format!(
            "For each of {} days with steps: merged steps, decisions a person made at Gate 2, and auto-merges. Human effort should fall as the loop earns trust.",
            o.days.len()
        ),
        "per day",
        &days,
        &[
            Bars { name: "merges".into(), values: o.days.iter().map(|d| d.merges as f64).collect() },
            Bars { name: "human decisions".into(), values: o.days.iter().map(|d| d.human_decisions as f64).collect() },
            Bars { name: "auto-merges".into(), values: o.days.iter().map(|d| d.auto_merges as f64).collect() },
        ],
    ));

    b.push_str("<h2>Providers</h2><div class=scroll><table id=providers><tr><th>provider</th><th>tier</th><th>picks</th><th>merges</th><th>reverts</th><th>won</th><th>slipped</th><th>mean utility</th></tr>");
    for p in &o.providers {
        b.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            shown(&p.name, Keep::Nothing),
            esc(p.tier.as_deref().unwrap_or("—")),
            p.picks,
            p.merges,
            p.reverts,
            p.won,
            p.slipped,
            p.mean_utility.map(|m| format!("{m:.2}")).unwrap_or_else(|| "—".into())
        ));
    }
    b.push_str("</table></div>");

    let count = |s: PainState| o.pains.iter().filter(|p| p.state == s).count();
    b.push_str(&format!(
        "<h2>Pains</h2><p id=pain-counts>{} open · {} targeted · {} verifying · {} won · {} slipped · {} unmeasured</p>",
        open.map_or("? (no agent key of this server in the workspace)".to_string(), |o| o.len().to_string()),
        count(PainState::Targeted),
        count(PainState::Verifying),
        count(PainState::Won),
        count(PainState::Slipped),
        count(PainState::Unmeasured),
    ));
    if let Some(open) = open.filter(|o| !o.is_empty()) {
        b.push_str(
            "<div class=scroll><table id=open-pains><tr><th>open pain</th><th>spans</th><th>per 1,000</th></tr>",
        );
        for p in open {
            b.push_str(&format!(
                "<tr><td>{}<br><code>{}</code></td><td>{}</td><td>{:.1}</td></tr>",
                esc(&p.title),
                esc(&p.pain_id),
                p.count,
                p.rate
            ));
        }
        b.push_str("</table></div>");
    }
    if !o.pains.is_empty() {
        b.push_str("<div class=scroll><table id=loop-pains><tr><th>pain</th><th>state</th><th>steps</th><th>before → after → latest (per 1,000)</th></tr>");
        for p in &o.pains {
            b.push_str(&format!(
                "<tr><td><code>{}</code></td><td class=\"state {}\">{}</td><td>{}</td><td>{}</td></tr>",
                shown(&p.pain, Keep::Nothing),
                p.state.word(),
                p.state.word(),
                esc(&p.steps.join(", ")),
                p.rates
                    .map(|r| format!("{:.1} → {:.1} → {:.1}", r.before, r.after, r.latest))
                    .unwrap_or_else(|| "—".into())
            ));
        }
        b.push_str("</table></div>");
    }

    b.push_str(&format!("<h2>Waiting for a human ({})</h2>", o.pending.len()));
    if o.pending.is_empty() {
        b.push_str("<p class=muted>Nothing is waiting.</p>");
    }
    for p in &o.pending {
        b.push_str(&format!(
            "<section class=pending id=\"pending-{}\"><h3>{} · {} · {} <code>{}</code></h3><p class=muted>focus {} · since {}</p>",
            esc(&p.id),
            esc(&p.id),
            shown(&p.provider, Keep::Nothing),
            esc(&p.op),
            shown(&p.path, Keep::Nothing),
            shown(&p.focus, Keep::Nothing),
            esc(&p.created)
        ));
        match &p.problem {
            Some(why) => b.push_str(&format!("<p class=err>Not shown: {}.</p>", esc(why))),
            None => {
                b.push_str(&format!("<p class=rationale>{}</p><pre class=diff>", shown(&p.rationale, Keep::Lines)));
                for (sign, line) in &p.diff {
                    let class = match sign {
                        '+' => "add",
                        '-' => "del",
                        '@' => "hunk",
                        _ => "ctx",
                    };
                    let (text, unsafe_found) = visible(line, Keep::Lines);
                    let mark = if unsafe_found { "!" } else { "" };
                    let sign = if *sign == '@' { String::new() } else { sign.to_string() };
                    b.push_str(&format!("<span class={class}>{}{mark}{}</span>", esc(&sign), esc(&text)));
                }
                if p.cut > 0 {
                    b.push_str(&format!("<span class=hunk>… {} more lines</span>", p.cut));
                }
                b.push_str("</pre>");
            }
        }
        b.push_str("<p class=muted>Decide at a terminal: <code>ratchet review</code>.</p></section>");
    }

    b.push_str("<h2>Watchdog</h2>");
    let w = &o.watchdog;
    b.push_str(&match &w.reason {
        Some(r) => format!(
            "<p class=err id=watchdog>ALARM: {}. The next pick forces exploration and prefers a human.</p>",
            esc(r)
        ),
        None => format!(
            "<p id=watchdog>ok · {} steps since the last merge{}</p>",
            w.steps_since_merge,
            w.hours_since_merge.map(|h| format!(", {h:.1} h")).unwrap_or_default()
        ),
    });
    layout("The loop", &b)
}
