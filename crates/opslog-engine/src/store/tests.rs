//! The store's unit tests: writes and reopen, checkpoints (with writes during them, and failed
//! ones), undo, batches, group mode, a read-only follower, the writer lock and agents.

use super::*;
use crate::fs_backend::FsBackend;
use crate::testing::{test_dir, TestDir};

fn dir(name: &str) -> TestDir {
    test_dir(&format!("store-{name}"))
}

fn open(d: &str, opts: Options) -> Store {
    Store::open(Arc::new(FsBackend::new(d)), opts).unwrap().0
}

fn state(s: &Store) -> Vec<(String, String)> {
    s.records().pairs().unwrap()
}

fn ops_file(d: &str, s: &Store) -> String {
    std::fs::read_to_string(format!("{d}/{}", s.active_ops())).unwrap()
}

#[test]
fn a_checkpoint_leaves_the_records_in_the_new_snapshot_but_writes_carried_over() {
    let d = dir("rebase");
    let mut s = open(&d, Options::default());
    for i in 0..50 {
        s.set(&format!("\"r{i}\""), &format!("{{\"v\":{i}}}"))
            .unwrap();
    }
    assert_eq!(s.records().held_in_memory(), 50);
    s.checkpoint().unwrap();
    assert_eq!(
        s.records().held_in_memory(),
        0,
        "all read back from the new snapshot"
    );
    let before = state(&s);
    assert_eq!(before.len(), 50);
    // An update of a record in the file: its previous text comes from the file.
    s.set("\"r3\"", r#"{"v":"x"}"#).unwrap();
    assert_eq!(
        s.ops().last().unwrap().op.prev.as_deref(),
        Some(r#"{"v":3}"#)
    );
    // A write while the snapshot is written: carried, and applied on the records as the new
    // snapshot holds them.
    let begun = s.checkpoint_begin().unwrap();
    s.set("\"late\"", "1").unwrap();
    let prepared = begun.prepare();
    s.checkpoint_finish(prepared).unwrap();
    assert_eq!(s.records().held_in_memory(), 1, "only the carried write");
    assert_eq!(s.records().get("\"late\"").unwrap().as_deref(), Some("1"));
    assert_eq!(
        s.records().get("\"r3\"").unwrap().as_deref(),
        Some(r#"{"v":"x"}"#)
    );
    assert_eq!(
        s.records().get("\"r4\"").unwrap().as_deref(),
        Some(r#"{"v":4}"#)
    );
}

#[test]
fn writes_survive_reopen_and_checkpoint() {
    let d = dir("reopen");
    let mut s = open(&d, Options::default());
    s.set("\"a\"", r#"{"n":1}"#).unwrap();
    s.set("\"b\"", r#"{"n":2}"#).unwrap();
    s.set(
        "\"a\"",
        r#"{"n":3,"x":"long enough to make a delta pay off"}"#,
    )
    .unwrap();
    s.delete("\"b\"").unwrap();
    assert!(matches!(s.delete("\"b\""), Err(Error::NotFound(_))));
    let before = state(&s);
    drop(s);
    std::fs::remove_file(format!("{d}/.lock")).unwrap();
    let mut s = open(
        &d,
        Options {
            checkpoint_on_close: true,
            ..Options::default()
        },
    );
    assert_eq!(state(&s), before);
    assert_eq!(s.ops().len(), 4);
    s.close().unwrap();
    let s = open(&d, Options::default());
    assert_eq!(state(&s), before);
    assert!(s.ops().is_empty());
}

#[test]
fn undo_truncates_exactly_the_last_op() {
    let d = dir("undo");
    let mut s = open(&d, Options::default());
    s.set(
        "\"a\"",
        r#"{"name":"A long name that makes deltas pay","status":"x"}"#,
    )
    .unwrap();
    let after_first = ops_file(&d, &s);
    s.set(
        "\"a\"",
        r#"{"name":"A long name that makes deltas pay","status":"z","extra":1}"#,
    )
    .unwrap();
    assert!(s.ops()[1].op.delta);
    let effects = s.undo().unwrap().unwrap();
    assert_eq!(
        effects,
        Change::Effects(vec![Effect {
            id: "\"a\"".into(),
            record: Some(r#"{"name":"A long name that makes deltas pay","status":"x"}"#.into())
        }])
    );
    assert_eq!(ops_file(&d, &s), after_first);
    let Some(Change::Effects(effects)) = s.undo().unwrap() else {
        panic!("an undo of a create")
    };
    assert_eq!(effects[0].record, None);
    assert_eq!(ops_file(&d, &s), "");
    assert_eq!(s.undo().unwrap(), None);
}

#[test]
fn group_sets_handed_over_together_write_and_come_due_where_single_sets_would() {
    let d = dir("group-many");
    let opts = Options {
        write_mode: WriteMode::Group,
        group_size: 3,
        checkpoint_threshold: 7.0,
        ..Options::default()
    };
    let mut s = open(&d, opts);
    let sets = |from: usize, n: usize| -> Vec<(String, String)> {
        (from..from + n)
            .map(|i| (format!("\"k{i}\""), format!("{{\"v\":{i}}}")))
            .collect()
    };
    let many = |s: &mut Store, items: &[(String, String)]| {
        let v = items
            .iter()
            .map(|(id, data)| (id.as_str(), data.as_str(), 1_700_000_000_000))
            .collect();
        s.set_many(v, false).unwrap()
    };
    assert_eq!(s.group_room(), 3, "a group's worth");
    assert_eq!(many(&mut s, &sets(0, 2)), WriteOutcome::Done);
    assert_eq!(ops_file(&d, &s), "", "buffered");
    assert_eq!(s.group_room(), 1, "the set that fills the buffer");
    assert_eq!(many(&mut s, &sets(2, 1)), WriteOutcome::Done);
    assert_eq!(
        ops_file(&d, &s).lines().count(),
        3,
        "written with the third"
    );
    assert_eq!(s.group_room(), 3);
    assert_eq!(many(&mut s, &sets(3, 3)), WriteOutcome::Done);
    assert_eq!(s.group_room(), 1, "the seventh op makes the checkpoint due");
    assert_eq!(many(&mut s, &sets(6, 1)), WriteOutcome::CheckpointDue);
    s.checkpoint().unwrap();
    assert_eq!(s.group_room(), 3);

    // Inside a batch they are staged in it, written by the commit alone.
    s.batch_begin().unwrap();
    assert_eq!(many(&mut s, &sets(10, 5)), WriteOutcome::Done);
    assert_eq!(ops_file(&d, &s), "");
    s.batch_commit().unwrap();
    assert_eq!(ops_file(&d, &s).lines().count(), 5);
    s.batch_begin().unwrap();
    many(&mut s, &sets(20, 2));
    let (effects, _) = s.batch_rollback(false).unwrap();
    assert_eq!(effects.len(), 2, "staged sets roll back");
    assert_eq!(s.records().len(), 12);
}

#[test]
fn group_mode_buffers_and_undo_takes_the_buffered_op() {
    let d = dir("group");
    let opts = Options {
        write_mode: WriteMode::Group,
        group_size: 3,
        ..Options::default()
    };
    let mut s = open(&d, opts);
    s.set("\"a\"", "{}").unwrap();
    s.set("\"b\"", "{}").unwrap();
    assert_eq!(ops_file(&d, &s), "");
    s.undo().unwrap();
    s.set("\"c\"", "{}").unwrap();
    s.set("\"d\"", "{}").unwrap();
    let text = ops_file(&d, &s);
    let ids: Vec<&str> = text
        .lines()
        .map(|l| &l[l.find("\"id\":").unwrap() + 5..l.find(",\"prev\"").unwrap()])
        .collect();
    assert_eq!(ids, ["\"a\"", "\"c\"", "\"d\""]);
    s.undo().unwrap();
    assert_eq!(ops_file(&d, &s).lines().count(), 2);
}

#[test]
fn batch_commits_in_one_append_and_rolls_back() {
    let d = dir("batch");
    let mut s = open(&d, Options::default());
    s.set("\"a\"", r#"{"v":1}"#).unwrap();
    s.batch_begin().unwrap();
    s.set("\"a\"", r#"{"v":2}"#).unwrap();
    s.delete("\"a\"").unwrap();
    s.set("\"b\"", r#"{"v":3}"#).unwrap();
    let (effects, reordered) = s.batch_rollback(true).unwrap();
    assert_eq!(effects.len(), 3);
    assert!(
        reordered,
        "the deleted a goes back to its slot, not to the end"
    );
    assert_eq!(
        state(&s),
        vec![("\"a\"".to_string(), r#"{"v":1}"#.to_string())]
    );
    assert_eq!(ops_file(&d, &s).lines().count(), 1);
    s.batch_begin().unwrap();
    s.set("\"b\"", "{}").unwrap();
    s.set("\"c\"", "{}").unwrap();
    s.batch_commit().unwrap();
    assert_eq!(ops_file(&d, &s).lines().count(), 3);
    s.batch_begin().unwrap();
    assert_eq!(s.batch_commit().unwrap(), WriteOutcome::Done);
}

#[test]
fn threshold_asks_for_a_checkpoint() {
    let d = dir("threshold");
    let mut s = open(
        &d,
        Options {
            checkpoint_threshold: 2.0,
            ..Options::default()
        },
    );
    assert_eq!(s.set("\"a\"", "{}").unwrap(), WriteOutcome::Done);
    assert_eq!(s.set("\"b\"", "{}").unwrap(), WriteOutcome::CheckpointDue);
    let old_ops = s.active_ops().to_string();
    s.checkpoint().unwrap();
    assert_ne!(s.active_ops(), old_ops);
    assert_eq!(s.manifest().stats.active_records, 2);
    let m = std::fs::read_to_string(format!("{d}/manifest.json")).unwrap();
    assert_eq!(Manifest::parse(&m).unwrap(), *s.manifest());
}

#[test]
fn writes_during_a_checkpoint_are_carried_into_its_op_file() {
    let d = dir("carried");
    let mut s = open(&d, Options::default());
    s.set("\"a\"", r#"{"v":1}"#).unwrap();
    s.set("\"b\"", r#"{"v":1}"#).unwrap();
    let begun = s.checkpoint_begin().unwrap();
    assert!(s.ops().is_empty(), "the snapshot being written covers them");
    s.set("\"a\"", r#"{"v":2}"#).unwrap();
    s.set("\"a\"", r#"{"v":3}"#).unwrap();
    s.delete("\"b\"").unwrap();
    assert!(matches!(s.delete("\"b\""), Err(Error::NotFound(_))));
    assert!(s.undo().is_err() && s.batch_begin().is_err() && s.checkpoint().is_err());
    let prevs: Vec<_> = s.ops().iter().map(|l| l.op.prev.clone()).collect();
    assert_eq!(
        prevs,
        [
            Some(r#"{"v":1}"#.into()),
            Some(r#"{"v":2}"#.into()),
            Some(r#"{"v":1}"#.into())
        ],
        "each op's prev is the record as the writes before it left it"
    );
    assert_eq!(
        s.records().get("\"a\"").unwrap().as_deref(),
        Some(r#"{"v":1}"#),
        "applied at the switch"
    );
    let old_ops = s.active_ops().to_string();
    assert!(s.checkpoint_finish(begun.prepare()).unwrap().is_none());
    assert_ne!(s.active_ops(), old_ops);
    assert_eq!(state(&s), [("\"a\"".to_string(), r#"{"v":3}"#.to_string())]);
    assert_eq!(s.manifest().stats.active_records, 2, "the snapshot's count");
    let snapshot = std::fs::read_to_string(format!("{d}/{}", s.manifest().current_snapshot));
    assert_eq!(
        snapshot.unwrap().lines().count(),
        3,
        "header, a and b at the cut"
    );
    let lines: Vec<String> = ops_file(&d, &s).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines,
        s.ops()
            .iter()
            .map(|l| l.line.to_string())
            .collect::<Vec<_>>()
    );
    // Positions are the new file's: undo cuts exactly the last op.
    assert!(s.undo().unwrap().is_some());
    assert_eq!(ops_file(&d, &s), format!("{}\n{}\n", lines[0], lines[1]));
    let before = state(&s);
    drop(s);
    std::fs::remove_file(format!("{d}/.lock")).unwrap();
    let s = open(&d, Options::default());
    assert_eq!(state(&s), before);
    assert_eq!(s.ops().len(), 2);
}

#[test]
fn a_checkpoint_due_while_one_runs_is_cut_at_once_and_written_next() {
    let d = dir("cut-meanwhile");
    let opts = Options {
        checkpoint_threshold: 2.0,
        ..Options::default()
    };
    let mut s = open(&d, opts.clone());
    s.set("\"a\"", r#"{"v":1}"#).unwrap();
    assert_eq!(s.set("\"b\"", "{}").unwrap(), WriteOutcome::CheckpointDue);
    let begun = s.checkpoint_due().unwrap().expect("none was running");
    s.set("\"a\"", r#"{"v":2}"#).unwrap();
    assert_eq!(s.set("\"c\"", "{}").unwrap(), WriteOutcome::CheckpointDue);
    assert!(s.checkpoint_due().unwrap().is_none(), "cut, written next");
    assert!(s.ops().is_empty());
    s.set("\"a\"", r#"{"v":3}"#).unwrap();
    assert_eq!(
        s.ops()[0].op.prev.as_deref(),
        Some(r#"{"v":2}"#),
        "seen through the ops taken out by the second cut"
    );
    let next = s
        .checkpoint_finish(begun.prepare())
        .unwrap()
        .expect("the second cut's checkpoint");
    assert_eq!(
        s.records().get("\"a\"").unwrap().as_deref(),
        Some(r#"{"v":2}"#),
        "the records at it"
    );
    assert_eq!(s.ops().len(), 1);
    assert!(s.checkpoint_finish(next.prepare()).unwrap().is_none());
    let snapshot = std::fs::read_to_string(format!("{d}/{}", s.manifest().current_snapshot));
    assert!(snapshot.unwrap().contains(r#"{"id":"a","data":{"v":2}}"#));
    assert_eq!(ops_file(&d, &s), format!("{}\n", s.ops()[0].line));
    let before = state(&s);
    assert_eq!(before.len(), 3);
    drop(s);
    std::fs::remove_file(format!("{d}/.lock")).unwrap();
    let mut s = open(&d, opts);
    assert_eq!(state(&s), before);
    assert_eq!(s.ops().len(), 1);
    assert!(s.undo().unwrap().is_some());
    assert_eq!(
        s.records().get("\"a\"").unwrap().as_deref(),
        Some(r#"{"v":2}"#)
    );
}

#[test]
fn a_failed_checkpoint_undoes_a_cut_made_meanwhile_too() {
    let d = dir("failed-with-cut");
    let mut s = open(
        &d,
        Options {
            checkpoint_threshold: 1.0,
            ..Options::default()
        },
    );
    s.set("\"a\"", "{}").unwrap();
    let begun = s.checkpoint_due().unwrap().unwrap();
    s.set("\"b\"", "{}").unwrap();
    assert!(s.checkpoint_due().unwrap().is_none());
    s.set("\"c\"", "{}").unwrap();
    drop(begun);
    assert!(s
        .checkpoint_finish(Err(Error::Invalid("disk full".into())))
        .is_err());
    let ids: Vec<String> = s.ops().iter().map(|l| l.op.id.clone()).collect();
    assert_eq!(ids, ["\"a\"", "\"b\"", "\"c\""]);
    assert_eq!(state(&s).len(), 3);
    assert_eq!(ops_file(&d, &s).lines().count(), 3);
    s.checkpoint().unwrap();
    assert!(s.ops().is_empty());
    assert_eq!(state(&s).len(), 3);
}

#[test]
fn a_failed_checkpoint_leaves_the_log_whole() {
    let d = dir("failed-checkpoint");
    let mut s = open(&d, Options::default());
    s.set("\"a\"", "{}").unwrap();
    let file = s.active_ops().to_string();
    let begun = s.checkpoint_begin().unwrap();
    s.set("\"b\"", "{}").unwrap();
    drop(begun);
    let failed = Err(Error::Invalid("disk full".into()));
    assert!(s.checkpoint_finish(failed).is_err());
    assert_eq!(s.active_ops(), file);
    assert_eq!(s.ops().len(), 2);
    assert_eq!(state(&s).len(), 2);
    assert_eq!(ops_file(&d, &s).lines().count(), 2);
    assert!(s.undo().unwrap().is_some());
    assert_eq!(ops_file(&d, &s).lines().count(), 1);
    s.checkpoint().unwrap();
    assert!(s.ops().is_empty());
    assert_eq!(state(&s).len(), 1);
}

#[test]
fn read_only_follower_sees_appends_and_checkpoints() {
    let d = dir("follow");
    let mut w = open(&d, Options::default());
    w.set("\"a\"", "{}").unwrap();
    let mut r = open(
        &d,
        Options {
            read_only: true,
            ..Options::default()
        },
    );
    assert_eq!(r.records().len(), 1);
    w.set("\"b\"", "{}").unwrap();
    assert_eq!(r.tail().unwrap().lines.len(), 1);
    assert_eq!(r.records().len(), 2);
    w.delete("\"a\"").unwrap();
    w.checkpoint().unwrap();
    w.set("\"c\"", "{}").unwrap();
    let t = r.tail().unwrap();
    assert!(!t.reset, "the ops handed out keep the view in order");
    assert_eq!(t.lines.len(), 2, "{:?}", t.lines);
    assert!(t.lines[0].contains(r#""op":"delete","id":"a""#));
    assert!(t.lines[1].contains(r#""op":"set","id":"c""#));
    assert_eq!(state(&r), state(&w));
    // Two checkpoints between reads: the first generation's ops are gone, a diff stands in.
    w.set("\"b\"", r#"{"v":1}"#).unwrap();
    w.checkpoint().unwrap();
    w.set("\"d\"", "{}").unwrap();
    w.checkpoint().unwrap();
    w.delete("\"c\"").unwrap();
    let t = r.tail().unwrap();
    assert_eq!(t.lines.len(), 3, "{:?}", t.lines);
    assert!(t.lines[0].contains(r#""op":"set","id":"b","prev":{},"data":{"v":1}"#));
    assert!(t.lines[1].contains(r#""op":"set","id":"d","prev":null"#));
    assert!(t.lines[2].contains(r#""op":"delete","id":"c""#));
    assert_eq!(state(&r), state(&w));
    assert!(r.set("\"x\"", "{}").is_err());
}

#[test]
fn a_follower_is_not_handed_carried_ops_twice() {
    let d = dir("follow-carried");
    let mut w = open(&d, Options::default());
    w.set("\"a\"", "{}").unwrap();
    let mut r = open(
        &d,
        Options {
            read_only: true,
            ..Options::default()
        },
    );
    let begun = w.checkpoint_begin().unwrap();
    w.set("\"b\"", "{}").unwrap();
    assert_eq!(r.tail().unwrap().lines.len(), 1, "b, from the old op file");
    assert!(w.checkpoint_finish(begun.prepare()).unwrap().is_none());
    w.set("\"c\"", "{}").unwrap();
    let t = r.tail().unwrap();
    assert!(!t.reset);
    assert_eq!(
        t.lines.len(),
        1,
        "only c: b opens the new file too {:?}",
        t.lines
    );
    assert!(t.lines[0].contains(r#""id":"c""#));
    assert_eq!(state(&r), state(&w));
}

#[test]
fn lock_excludes_a_second_writer() {
    let d = dir("lock");
    let mut s = open(&d, Options::default());
    let e = Store::open(Arc::new(FsBackend::new(&d)), Options::default())
        .err()
        .unwrap();
    assert!(matches!(e, Error::Locked { .. }));

    s.close().unwrap();
    assert!(Store::open(Arc::new(FsBackend::new(&d)), Options::default()).is_ok());
}

fn agent(d: &str, id: &str) -> Store {
    open(
        d,
        Options {
            agent_id: Some(id.into()),
            ..Options::default()
        },
    )
}

#[test]
fn agents_compacting_with_stale_views_lose_nothing() {
    let d = dir("agents");
    let mut a = agent(&d, "A");
    let mut b = agent(&d, "B");
    a.set("\"a1\"", "{}").unwrap();
    b.set("\"b1\"", "{}").unwrap();
    assert!(
        a.checkpoint().unwrap(),
        "A compacted (and reloaded every agent's ops)"
    );
    b.set("\"b2\"", "{}").unwrap();
    a.set("\"a2\"", "{}").unwrap();
    b.checkpoint().unwrap();
    a.set("\"a3\"", "{}").unwrap();
    a.close().unwrap();
    b.close().unwrap();
    let r = open(
        &d,
        Options {
            read_only: true,
            agent_id: Some("R".into()),
            ..Options::default()
        },
    );
    let mut ids: Vec<String> = r
        .records()
        .pairs()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["\"a1\"", "\"a2\"", "\"a3\"", "\"b1\"", "\"b2\""]);
}

#[test]
fn higher_clock_wins_and_ties_go_to_the_later_agent() {
    let d = dir("lww");
    let mut a = agent(&d, "a");
    let mut b = agent(&d, "B");
    a.set("\"k\"", r#"{"by":"a"}"#).unwrap(); // clock 1
    b.set("\"k\"", r#"{"by":"B"}"#).unwrap(); // clock 1: "B" sorts after "a"
    a.tail().unwrap();
    assert_eq!(
        a.records().get("\"k\"").unwrap().as_deref(),
        Some(r#"{"by":"B"}"#)
    );
    a.set("\"k\"", r#"{"by":"a2"}"#).unwrap(); // clock 2 after the merge
    b.tail().unwrap();
    assert_eq!(
        b.records().get("\"k\"").unwrap().as_deref(),
        Some(r#"{"by":"a2"}"#)
    );
    assert_eq!(
        b.ops()
            .iter()
            .map(|l| l.op.clock.unwrap())
            .collect::<Vec<_>>(),
        [1, 1, 2]
    );
}

#[test]
fn undo_takes_back_only_this_agents_last_op() {
    let d = dir("agent-undo");
    let mut a = agent(&d, "A");
    let mut b = agent(&d, "B");
    a.set("\"x\"", "{}").unwrap();
    b.set("\"y\"", "{}").unwrap();
    a.tail().unwrap();
    assert_eq!(a.undo().unwrap(), Some(Change::Reset));
    assert_eq!(a.records().get("\"x\"").unwrap(), None);
    assert!(a.records().contains("\"y\"").unwrap(), "B's op stays");
    assert_eq!(a.undo().unwrap(), Some(Change::ReloadedOnly));
}

#[test]
fn a_dead_agents_compaction_lock_is_taken_over() {
    let d = dir("stale-compact");
    let mut a = agent(&d, "A");
    a.set("\"x\"", "{}").unwrap();
    // pid 1 is alive: like a reference agent (which does not flock) holding the lock.
    std::fs::write(format!("{d}/.compact-lock"), "1").unwrap();
    assert!(
        !a.checkpoint().unwrap(),
        "a live holder: compaction is skipped"
    );
    // Another agent of ours holding it (with flock), in this very process.
    std::fs::remove_file(format!("{d}/.compact-lock")).unwrap();
    let b = agent(&d, "B");
    assert!(b.backend.try_compaction_lock().unwrap());
    assert!(!a.checkpoint().unwrap(), "held by B: compaction is skipped");
    b.backend.release_compaction_lock().unwrap();
    // Just created and still empty: a reference agent about to write its pid.
    std::fs::write(format!("{d}/.compact-lock"), "").unwrap();
    assert!(!a.checkpoint().unwrap(), "a fresh empty lock is held");
    std::fs::write(format!("{d}/.compact-lock"), "999999999").unwrap();
    assert!(a.checkpoint().unwrap(), "a dead holder's lock is recovered");
    assert!(!std::path::Path::new(&format!("{d}/.compact-lock")).exists());
}

#[test]
fn sessions_leave_only_the_current_and_previous_generation() {
    let d = dir("sessions");
    let files = |sub: &str| {
        let mut v: Vec<String> = std::fs::read_dir(format!("{d}/{sub}"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    for session in 0..4 {
        let mut s = open(&d, Options::default());
        for i in 0..3 {
            s.set(&format!("\"{session}-{i}\""), "{}").unwrap();
            s.checkpoint().unwrap();
        }
        s.close().unwrap();
        let current = s.manifest().current_snapshot.clone();
        assert!(
            files("snapshots").len() <= 2,
            "session {session}: {:?}",
            files("snapshots")
        );
        assert!(
            files("ops").len() <= 2,
            "session {session}: {:?}",
            files("ops")
        );
        assert!(files("snapshots").contains(&current.replace("snapshots/", "")));
    }
    // A crashed checkpoint's temporary file goes at the next checkpoint.
    std::fs::write(format!("{d}/snapshots/snap-1.jsonl.tmp"), "partial").unwrap();
    std::fs::write(format!("{d}/ops/agent-x-1.jsonl"), "").unwrap();
    let mut s = open(&d, Options::default());
    s.checkpoint().unwrap();
    assert!(!files("snapshots").iter().any(|f| f.ends_with(".tmp")));
    assert!(
        files("ops").contains(&"agent-x-1.jsonl".to_string()),
        "an agent's op file is not this store's to delete"
    );
    assert_eq!(state(&s).len(), 12);
}
