//! `manifest.json`: which snapshot and op files are current.

use serde_json::Value;

use super::json;

#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub active_records: u64,
    pub archived_records: u64,
    pub ops_count: u64,
    pub created: String,
    pub last_checkpoint: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub version: u64,
    pub current_snapshot: String,
    pub active_ops: String,
    pub archive_segments: Vec<String>,
    pub stats: Stats,
    /// Multi-writer: agent id to op file, in manifest order.
    pub active_agent_ops: Option<Vec<(String, String)>>,
    /// Multi-writer: per agent, the highest clock of its ops that the current snapshot holds.
    /// Ops at or below it are not replayed. (Unknown to the reference, which ignores it.)
    pub agent_clocks: Option<Vec<(String, u64)>>,
    /// Multi-writer: the highest clock of any op the current snapshot holds, so an agent that
    /// was retired (its file and `agentClocks` entry dropped) and comes back continues above
    /// what it wrote before. (Ours too; the reference ignores it.)
    pub snapshot_clock: Option<u64>,
}

impl Manifest {
    /// Every file path the manifest names.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        [&self.current_snapshot, &self.active_ops]
            .into_iter()
            .chain(&self.archive_segments)
            .chain(self.active_agent_ops.iter().flatten().map(|(_, p)| p))
            .map(String::as_str)
    }

    pub fn fresh(snapshot: String, ops: String, now: String) -> Self {
        Manifest {
            version: 1,
            current_snapshot: snapshot,
            active_ops: ops,
            archive_segments: Vec::new(),
            stats: Stats {
                active_records: 0,
                archived_records: 0,
                ops_count: 0,
                created: now.clone(),
                last_checkpoint: now,
            },
            active_agent_ops: None,
            agent_clocks: None,
            snapshot_clock: None,
        }
    }

    /// `JSON.stringify(manifest, null, 2)` with the reference's key order.
    pub fn encode(&self) -> String {
        let q = json::quote;
        let mut out = String::from("{\n");
        out.push_str(&format!("  \"version\": {},\n", self.version));
        out.push_str(&format!(
            "  \"currentSnapshot\": {},\n",
            q(&self.current_snapshot)
        ));
        out.push_str(&format!("  \"activeOps\": {},\n", q(&self.active_ops)));
        if self.archive_segments.is_empty() {
            out.push_str("  \"archiveSegments\": [],\n");
        } else {
            let items: Vec<String> = self
                .archive_segments
                .iter()
                .map(|s| format!("    {}", q(s)))
                .collect();
            out.push_str(&format!(
                "  \"archiveSegments\": [\n{}\n  ],\n",
                items.join(",\n")
            ));
        }
        let s = &self.stats;
        out.push_str("  \"stats\": {\n");
        out.push_str(&format!("    \"activeRecords\": {},\n", s.active_records));
        out.push_str(&format!(
            "    \"archivedRecords\": {},\n",
            s.archived_records
        ));
        out.push_str(&format!("    \"opsCount\": {},\n", s.ops_count));
        out.push_str(&format!("    \"created\": {},\n", q(&s.created)));
        out.push_str(&format!(
            "    \"lastCheckpoint\": {}\n",
            q(&s.last_checkpoint)
        ));
        out.push_str("  }");
        if let Some(agents) = &self.active_agent_ops {
            if agents.is_empty() {
                out.push_str(",\n  \"activeAgentOps\": {}");
            } else {
                let items: Vec<String> = agents
                    .iter()
                    .map(|(a, p)| format!("    {}: {}", q(a), q(p)))
                    .collect();
                out.push_str(&format!(
                    ",\n  \"activeAgentOps\": {{\n{}\n  }}",
                    items.join(",\n")
                ));
            }
        }
        if let Some(clocks) = &self.agent_clocks {
            if clocks.is_empty() {
                out.push_str(",\n  \"agentClocks\": {}");
            } else {
                let items: Vec<String> = clocks
                    .iter()
                    .map(|(a, c)| format!("    {}: {c}", q(a)))
                    .collect();
                out.push_str(&format!(
                    ",\n  \"agentClocks\": {{\n{}\n  }}",
                    items.join(",\n")
                ));
            }
        }
        if let Some(clock) = self.snapshot_clock {
            out.push_str(&format!(",\n  \"snapshotClock\": {clock}"));
        }
        out.push_str("\n}");
        out
    }

    /// Multi-writer: the op files, as `(agent, file)`. A store written by a single writer has no
    /// agent files yet: its op file stands as agent "".
    pub fn agent_files(&self) -> Vec<(String, String)> {
        match &self.active_agent_ops {
            Some(agents) => agents.clone(),
            None => vec![(String::new(), self.active_ops.clone())],
        }
    }

    /// The snapshot's clock for `agent`'s ops, if it records one.
    pub fn agent_clock(&self, agent: &str) -> Option<u64> {
        self.agent_clocks
            .as_ref()?
            .iter()
            .find(|(a, _)| a == agent)
            .map(|(_, c)| *c)
    }

    /// The compact JSON of what `getManifest()` exposes.
    pub fn info_json(&self) -> String {
        let q = json::quote;
        let segs: Vec<String> = self.archive_segments.iter().map(|s| q(s)).collect();
        let s = &self.stats;
        format!(
            "{{\"currentSnapshot\":{},\"activeOps\":{},\"archiveSegments\":[{}],\"stats\":{{\"activeRecords\":{},\"archivedRecords\":{},\"opsCount\":{},\"created\":{},\"lastCheckpoint\":{}}}}}",
            q(&self.current_snapshot),
            q(&self.active_ops),
            segs.join(","),
            s.active_records,
            s.archived_records,
            s.ops_count,
            q(&s.created),
            q(&s.last_checkpoint)
        )
    }

    /// Parses and validates manifest text with `validateManifest`'s rules and messages.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let raw: Value =
            serde_json::from_str(text).map_err(|e| format!("Invalid manifest JSON: {e}"))?;
        Self::from_value(&raw)
    }

    pub fn from_value(raw: &Value) -> Result<Manifest, String> {
        let obj = raw.as_object().ok_or("Invalid manifest: not an object")?;
        let version = positive_int(obj.get("version"))
            .ok_or("Invalid manifest: version must be a positive finite integer")?;
        let current_snapshot = non_empty(obj.get("currentSnapshot"))
            .ok_or("Invalid manifest: missing currentSnapshot")?;
        let active_ops =
            non_empty(obj.get("activeOps")).ok_or("Invalid manifest: missing activeOps")?;
        let segs = obj.get("archiveSegments").and_then(Value::as_array);
        let segs = segs.ok_or("Invalid manifest: archiveSegments must be an array")?;
        let mut archive_segments = Vec::with_capacity(segs.len());
        for seg in segs {
            let s = non_empty(Some(seg))
                .ok_or("Invalid manifest: archiveSegments entries must be non-empty strings")?;
            archive_segments.push(s);
        }
        let stats = obj
            .get("stats")
            .and_then(Value::as_object)
            .ok_or("Invalid manifest: missing stats")?;
        let count = |name: &str| {
            non_negative_int(stats.get(name)).ok_or(format!(
                "Invalid manifest: stats.{name} must be a non-negative integer"
            ))
        };
        let text = |name: &str| {
            non_empty(stats.get(name)).ok_or(format!(
                "Invalid manifest: stats.{name} must be a non-empty string"
            ))
        };
        let stats = Stats {
            active_records: count("activeRecords")?,
            archived_records: count("archivedRecords")?,
            ops_count: count("opsCount")?,
            created: text("created")?,
            last_checkpoint: text("lastCheckpoint")?,
        };
        let active_agent_ops = match obj.get("activeAgentOps") {
            None => None,
            Some(v) => {
                let map = v
                    .as_object()
                    .ok_or("Invalid manifest: activeAgentOps must be an object")?;
                let mut agents = Vec::with_capacity(map.len());
                for (agent, path) in map {
                    let p = non_empty(Some(path)).ok_or(
                        "Invalid manifest: activeAgentOps values must be non-empty strings",
                    )?;
                    agents.push((agent.clone(), p));
                }
                Some(agents)
            }
        };
        let agent_clocks = match obj.get("agentClocks") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let bad = "Invalid manifest: agentClocks values must be non-negative integers";
                let map = v.as_object().ok_or(bad)?;
                let mut clocks = Vec::with_capacity(map.len());
                for (agent, clock) in map {
                    clocks.push((agent.clone(), non_negative_int(Some(clock)).ok_or(bad)?));
                }
                Some(clocks)
            }
        };
        let snapshot_clock = match obj.get("snapshotClock") {
            None | Some(Value::Null) => None,
            v => Some(
                non_negative_int(v)
                    .ok_or("Invalid manifest: snapshotClock must be a non-negative integer")?,
            ),
        };
        Ok(Manifest {
            version,
            current_snapshot,
            active_ops,
            archive_segments,
            stats,
            active_agent_ops,
            agent_clocks,
            snapshot_clock,
        })
    }
}

fn non_empty(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn non_negative_int(v: Option<&Value>) -> Option<u64> {
    let f = v?.as_f64()?;
    (f.is_finite() && f.fract() == 0.0 && f >= 0.0).then_some(f as u64)
}

fn positive_int(v: Option<&Value>) -> Option<u64> {
    non_negative_int(v).filter(|&n| n >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_json_stringify_pretty() {
        let mut m = Manifest::fresh(
            "snapshots/snap-1.jsonl".into(),
            "ops/ops-1.jsonl".into(),
            "T".into(),
        );
        assert_eq!(
            m.encode(),
            "{\n  \"version\": 1,\n  \"currentSnapshot\": \"snapshots/snap-1.jsonl\",\n  \"activeOps\": \"ops/ops-1.jsonl\",\n  \"archiveSegments\": [],\n  \"stats\": {\n    \"activeRecords\": 0,\n    \"archivedRecords\": 0,\n    \"opsCount\": 0,\n    \"created\": \"T\",\n    \"lastCheckpoint\": \"T\"\n  }\n}"
        );
        m.archive_segments = vec!["archive/archive-2026-Q4.json".into()];
        m.active_agent_ops = Some(vec![("a".into(), "ops/agent-a-1.jsonl".into())]);
        let text = m.encode();
        assert!(text.contains("\"archiveSegments\": [\n    \"archive/archive-2026-Q4.json\"\n  ],"));
        assert!(text.ends_with(
            "  },\n  \"activeAgentOps\": {\n    \"a\": \"ops/agent-a-1.jsonl\"\n  }\n}"
        ));
        assert_eq!(Manifest::parse(&text).unwrap(), m);
    }

    #[test]
    fn validation_messages() {
        assert_eq!(
            Manifest::parse("[]").unwrap_err(),
            "Invalid manifest: not an object"
        );
        assert_eq!(
            Manifest::parse("{\"version\":0}").unwrap_err(),
            "Invalid manifest: version must be a positive finite integer"
        );
        let bad_stats = r#"{"version":1,"currentSnapshot":"s","activeOps":"o","archiveSegments":[],"stats":{"activeRecords":-1}}"#;
        assert_eq!(
            Manifest::parse(bad_stats).unwrap_err(),
            "Invalid manifest: stats.activeRecords must be a non-negative integer"
        );
        assert!(Manifest::parse("{oops")
            .unwrap_err()
            .starts_with("Invalid manifest JSON"));
    }
}
