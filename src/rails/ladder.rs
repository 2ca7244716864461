//! The validators of the trust ladder and the gate: `[[trust.tiers]]` and
//! `[trust] runs_on_use`, then `[gate]` with `[gate.auto_merge]` (whose
//! `min_tier` names a tier) and `[gate.quorum]`.

use super::raw::{TomlGate, TomlTrust};
use super::validate::Validator;
use super::*;

impl Validator<'_> {
    /// `[[trust.tiers]]`: distinct names, paths inside the allowlist; the
    /// files tools execute on use (the rails' list or [`RUNS_ON_USE`], and
    /// the scripts the checks command names). Grants come with the providers.
    pub(super) fn trust(
        &self,
        raw: Option<TomlTrust>,
        policy: &PathPolicy,
        checks: &Checks,
    ) -> Result<Trust, RailsError> {
        let (raw_tiers, raw_runs) = raw.map(|t| (t.tiers, t.runs_on_use)).unwrap_or_default();
        let mut tiers: Vec<Tier> = Vec::new();
        for t in &raw_tiers {
            let tier = t.get_ref();
            if tiers.iter().any(|x| x.name == tier.name) {
                return Err(self.invalid(
                    t.span(),
                    format!("trust tier {:?} is defined twice", tier.name),
                    "give each tier a distinct name",
                ));
            }
            self.inside_allowlist(&tier.paths, &policy.allow, &format!("trust tier {:?}", tier.name))?;
            let paths = self.patterns(&tier.paths, false, "trust tier")?;
            tiers.push(Tier { name: tier.name.clone(), paths, unlock_after: tier.unlock_after.unwrap_or(0) });
        }
        let mut runs: Vec<String> = match &raw_runs {
            Some(list) => {
                self.patterns(list, true, "[trust] runs_on_use")?;
                list.iter().map(|p| p.get_ref().clone()).collect()
            }
            None => RUNS_ON_USE.iter().map(|p| p.to_string()).collect(),
        };
        runs.extend(named_files(&checks.command));
        let runs_on_use = PatternSet::new(&runs, true).map_err(|(p, e)| {
            self.invalid(
                self.header("[trust]"),
                format!("[trust] runs_on_use pattern {p:?} is not a valid glob: {e}"),
                "fix the glob",
            )
        })?;
        Ok(Trust { tiers, runs_on_use, granted: BTreeMap::new() })
    }

    /// `[gate]`: a human always (Gate 2 cannot be switched off); auto-merge
    /// only as a narrow, opted-in exception inside the allowlist.
    pub(super) fn gate(&self, raw: Option<TomlGate>, policy: &PathPolicy, trust: &Trust) -> Result<Gate, RailsError> {
        let mut gate = Gate::default();
        let Some(g) = raw else { return Ok(gate) };
        if let Some(h) = g.human {
            if !*h.get_ref() {
                return Err(self.invalid(
                    h.span(),
                    "[gate] human = false would let patches merge without a human",
                    "keep human = true; use [gate.auto_merge] for narrow, opted-in exceptions",
                ));
            }
        }
        if let Some(am) = g.auto_merge {
            let span = am.span();
            let am = am.into_inner();
            let d = AutoMerge::default();
            self.inside_allowlist(&am.paths, &policy.allow, "[gate.auto_merge]")?;
            let min_tier = match &am.min_tier {
                None => d.min_tier,
                Some(name) => trust.index(name.get_ref()).ok_or_else(|| {
                    self.invalid(
                        name.span(),
                        format!("[gate.auto_merge] min_tier {:?} names no [[trust.tiers]] entry", name.get_ref()),
                        format!("use one of: {}", tier_names(trust)),
                    )
                })?,
            };
            let min_predicted_utility = am.min_predicted_utility.unwrap_or(d.min_predicted_utility);
            if !(0.0..=1.0).contains(&min_predicted_utility) {
                return Err(self.invalid(
                    span,
                    "[gate.auto_merge] min_predicted_utility must lie in [0, 1]",
                    "utility is a number in [0, 1]",
                ));
            }
            let enabled = am.enabled.unwrap_or(d.enabled);
            if enabled && am.paths.is_empty() {
                return Err(self.invalid(
                    span,
                    "[gate.auto_merge] is enabled with no paths",
                    "list the narrow paths auto-merge may touch",
                ));
            }
            gate.auto_merge = AutoMerge {
                enabled,
                paths: self.patterns(&am.paths, false, "[gate.auto_merge]")?,
                max_lines: am.max_lines.unwrap_or(d.max_lines),
                min_tier,
                min_predicted_utility,
                remote: am.remote.unwrap_or(d.remote),
            };
        }
        if let Some(q) = g.quorum {
            let d = Quorum::default();
            gate.quorum = Quorum {
                min_attestations: q.min_attestations.unwrap_or(d.min_attestations),
                max_objections: q.max_objections.unwrap_or(d.max_objections),
                required_roles: q.required_roles,
                require_verified: q.require_verified.unwrap_or(d.require_verified),
            };
        }
        Ok(gate)
    }
}

/// The tier names, for a hint.
pub(super) fn tier_names(trust: &Trust) -> String {
    trust.tiers.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
}
