//! The rails of the agents API (`[agents]`, `[gate.quorum]`) and the quorum
//! that decides when a remote candidate is ready for a human.
//!
//! Quorum, on one story:
//! - only verdicts on the story's *current* packet hash count (a revision
//!   adopted since makes earlier attestations stale);
//! - each bot counts once, with its latest verdict on that packet (an
//!   attestation followed by an objection is an objection);
//! - the candidate's author never counts, nor, when `require_verified`,
//!   an unverified bot;
//! - it is met when the counted attestations reach `min_attestations`, the
//!   counted objections do not exceed `max_objections`, and every
//!   `required_roles` entry has at least one counted attestation.
//!
//! Quorum makes a candidate *ready* for Gate 2; it never merges anything.

use serde::{Deserialize, Serialize};

use crate::rails::{Agents, Quorum};

/// Validates `[agents]` (its raw fields) together with `[gate.quorum]`.
/// Errors are (message, hint) for the rails parser to place.
#[allow(clippy::type_complexity)]
pub fn agents_rails(
    raw: Option<(Option<String>, Option<bool>, Option<Vec<String>>, Option<u32>, Vec<String>)>,
    quorum: &Quorum,
) -> Result<Agents, (String, String)> {
    let mut a = Agents::default();
    if let Some((audience, self_serve, roles, per_minute, operators)) = raw {
        if let Some(aud) = audience {
            if aud.is_empty() || aud.len() > 100 || aud.contains('.') || aud.chars().any(|c| c.is_whitespace()) {
                return Err((
                    format!("[agents] audience {aud:?} must be 1 to 100 characters without dots or spaces"),
                    "the audience is one word such as \"ratchet\"; a dot would make the signed message ambiguous"
                        .into(),
                ));
            }
            a.audience = aud;
        }
        a.self_serve = self_serve.unwrap_or(true);
        if let Some(roles) = roles {
            if roles.is_empty() {
                return Err(("[agents] roles is empty".into(), "name at least one role, such as \"REVIEW\"".into()));
            }
            for r in &roles {
                if r.is_empty()
                    || r.len() > 64
                    || !r.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
                {
                    return Err((
                        format!("[agents] role {r:?} is not UPPER_SNAKE_CASE"),
                        "write roles as the SDK does: WRITER, FACT_CHECK, REVIEW, TESTS, SECURITY".into(),
                    ));
                }
            }
            a.roles = roles;
        }
        if let Some(n) = per_minute {
            if n == 0 {
                return Err((
                    "[agents] writes_per_minute is 0".into(),
                    "set self_serve = false to close the API; the limit must be at least 1".into(),
                ));
            }
            a.writes_per_minute = n;
        }
        for k in &operators {
            if let Err(e) = crate::agents::signed::bot_key(k) {
                return Err((
                    format!("[agents] operator_keys: {e}"),
                    "paste the public key that `ratchet agent keygen` printed as botId".into(),
                ));
            }
        }
        a.operator_keys = operators;
    }
    for r in &quorum.required_roles {
        if !a.roles.contains(r) {
            return Err((
                format!("[gate.quorum] required_roles names {r:?}, which is not in [agents] roles"),
                format!("use one of: {}", a.roles.join(", ")),
            ));
        }
    }
    Ok(a)
}

/// What a bot said about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Attest,
    Object,
}

/// One attestation or objection, as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BotVerdict {
    pub bot_id: String,
    pub verdict: Verdict,
    pub role: String,
    pub packet_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether the bot was verified when quorum was computed.
    pub verified: bool,
    /// The write's place in the ledger (later wins).
    pub seq: i64,
}

/// Where a story stands against `[gate.quorum]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuorumState {
    pub met: bool,
    pub packet_hash: String,
    pub min_attestations: u32,
    pub max_objections: u32,
    pub required_roles: Vec<String>,
    pub require_verified: bool,
    /// Bots whose attestations count.
    pub attestations: Vec<String>,
    /// Bots whose objections count.
    pub objections: Vec<String>,
    /// Required roles no counted attestation has.
    pub missing_roles: Vec<String>,
    /// Verdicts that do not count, and why.
    pub ignored: Vec<Ignored>,
    /// What quorum is waiting for, in words; empty when met.
    pub waiting_for: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ignored {
    pub bot_id: String,
    pub why: String,
}

/// Evaluates quorum on `packet` of a candidate by `author`.
pub fn quorum(rule: &Quorum, author: &str, packet: &str, verdicts: &[BotVerdict]) -> QuorumState {
    let mut latest: Vec<&BotVerdict> = Vec::new();
    let mut ignored = Vec::new();
    let mut sorted: Vec<&BotVerdict> = verdicts.iter().collect();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.seq));
    for v in sorted {
        if v.packet_hash != packet {
            ignored
                .push(Ignored { bot_id: v.bot_id.clone(), why: format!("on stale packet {}", short(&v.packet_hash)) });
            continue;
        }
        if latest.iter().any(|l| l.bot_id == v.bot_id) {
            continue;
        }
        if v.bot_id == author {
            ignored.push(Ignored { bot_id: v.bot_id.clone(), why: "the candidate's author".into() });
            continue;
        }
        if rule.require_verified && !v.verified {
            ignored.push(Ignored { bot_id: v.bot_id.clone(), why: "not verified".into() });
            continue;
        }
        latest.push(v);
    }
    latest.reverse();
    let attestations: Vec<String> =
        latest.iter().filter(|v| v.verdict == Verdict::Attest).map(|v| v.bot_id.clone()).collect();
    let objections: Vec<String> =
        latest.iter().filter(|v| v.verdict == Verdict::Object).map(|v| v.bot_id.clone()).collect();
    let missing_roles: Vec<String> = rule
        .required_roles
        .iter()
        .filter(|r| !latest.iter().any(|v| v.verdict == Verdict::Attest && &v.role == *r))
        .cloned()
        .collect();
    let mut waiting_for = Vec::new();
    if (attestations.len() as u32) < rule.min_attestations {
        waiting_for.push(format!(
            "{} more attestation(s) on the current packet ({} of {})",
            rule.min_attestations - attestations.len() as u32,
            attestations.len(),
            rule.min_attestations
        ));
    }
    if objections.len() as u32 > rule.max_objections {
        waiting_for.push(format!(
            "{} objection(s), over the limit of {}: withdrawn by attesting, or answered by a revision",
            objections.len(),
            rule.max_objections
        ));
    }
    if !missing_roles.is_empty() {
        waiting_for.push(format!("an attestation in role(s) {}", missing_roles.join(", ")));
    }
    QuorumState {
        met: waiting_for.is_empty(),
        packet_hash: packet.to_string(),
        min_attestations: rule.min_attestations,
        max_objections: rule.max_objections,
        required_roles: rule.required_roles.clone(),
        require_verified: rule.require_verified,
        attestations,
        objections,
        missing_roles,
        ignored,
        waiting_for,
    }
}

/// The YES votes a revision needs to be adopted: at least one, and at
/// least `min_attestations`.
pub fn votes_needed(rule: &Quorum) -> u32 {
    rule.min_attestations.max(1)
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(min: u32, max: u32, roles: &[&str]) -> Quorum {
        Quorum {
            min_attestations: min,
            max_objections: max,
            required_roles: roles.iter().map(|r| r.to_string()).collect(),
            require_verified: false,
        }
    }

    fn v(bot: &str, verdict: Verdict, role: &str, packet: &str, seq: i64) -> BotVerdict {
        BotVerdict {
            bot_id: bot.into(),
            verdict,
            role: role.into(),
            packet_hash: packet.into(),
            severity: None,
            reason: None,
            verified: bot.starts_with('v'),
            seq,
        }
    }

    #[test]
    fn the_author_stale_packets_and_repeats_do_not_count() {
        let r = rule(2, 0, &[]);
        let vs = [
            v("author", Verdict::Attest, "WRITER", "p2", 1),
            v("b", Verdict::Attest, "RISK", "p1", 2),
            v("c", Verdict::Attest, "RISK", "p2", 3),
            v("c", Verdict::Attest, "RISK", "p2", 4),
        ];
        let q = quorum(&r, "author", "p2", &vs);
        assert!(!q.met);
        assert_eq!(q.attestations, ["c"]);
        assert_eq!(q.ignored.len(), 2);
        let vs2 = [&vs[..], &[v("d", Verdict::Attest, "WRITER", "p2", 5)]].concat();
        let q = quorum(&r, "author", "p2", &vs2);
        assert!(q.met, "{:?}", q.waiting_for);
        assert_eq!(q.attestations, ["c", "d"]);
    }

    #[test]
    fn a_later_objection_replaces_an_attestation_and_blocks() {
        let r = rule(1, 0, &[]);
        let vs = [v("b", Verdict::Attest, "RISK", "p", 1), v("c", Verdict::Attest, "RISK", "p", 2)];
        assert!(quorum(&r, "a", "p", &vs).met);
        let vs = [&vs[..], &[v("b", Verdict::Object, "RISK", "p", 3)]].concat();
        let q = quorum(&r, "a", "p", &vs);
        assert!(!q.met);
        assert_eq!((q.attestations.len(), q.objections.len()), (1, 1));
    }

    #[test]
    fn required_roles_and_verified_bots() {
        let mut r = rule(1, 0, &["RISK"]);
        let vs = [v("b", Verdict::Attest, "WRITER", "p", 1)];
        let q = quorum(&r, "a", "p", &vs);
        assert_eq!(q.missing_roles, ["RISK"]);
        assert!(!q.met);
        let vs = [v("b", Verdict::Attest, "RISK", "p", 1)];
        assert!(quorum(&r, "a", "p", &vs).met);
        r.require_verified = true;
        assert!(!quorum(&r, "a", "p", &vs).met);
        let vs = [v("vb", Verdict::Attest, "RISK", "p", 1)];
        assert!(quorum(&r, "a", "p", &vs).met);
    }

    #[test]
    fn at_the_limit_and_one_over() {
        let r = rule(0, 1, &[]);
        let one = [v("b", Verdict::Object, "RISK", "p", 1)];
        assert!(quorum(&r, "a", "p", &one).met);
        let two = [&one[..], &[v("c", Verdict::Object, "RISK", "p", 2)]].concat();
        assert!(!quorum(&r, "a", "p", &two).met);
        assert_eq!(votes_needed(&r), 1);
        assert_eq!(votes_needed(&rule(3, 0, &[])), 3);
    }
}
