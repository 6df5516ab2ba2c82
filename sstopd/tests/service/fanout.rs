//! Fan-out: many viewers, slow viewers, late joiners, interval negotiation, detail.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::harness::*;
use proto::*;
use sstopd::config::SyntheticSize;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_viewers_receive_the_same_frames() {
    let d = Daemon::start(|c| c.interval = Duration::from_millis(200)).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let mut v = d.subscribed(200, None).await;
        tasks.push(tokio::spawn(async move {
            v.collect_for(Duration::from_millis(2500)).await
        }));
    }
    let mut common: Option<BTreeSet<u64>> = None;
    let mut bytes_by_seq = std::collections::HashMap::new();
    for t in tasks {
        let msgs = t.await.unwrap();
        let s: BTreeSet<u64> = seqs(&msgs).into_iter().collect();
        assert!(s.len() >= 5, "a viewer got only {} frames", s.len());
        // Same seq → same content for everyone (encoded once).
        for m in &msgs {
            if let ServerMsg::Snapshot(snap) = m {
                let enc = encode_frame(m).unwrap();
                let prev = bytes_by_seq.entry(snap.seq).or_insert_with(|| enc.clone());
                assert_eq!(*prev, enc, "seq {} differs between viewers", snap.seq);
            }
        }
        common = Some(match common {
            None => s,
            Some(c) => c.intersection(&s).copied().collect(),
        });
    }
    let common = common.unwrap();
    assert!(
        common.len() >= 4,
        "all 50 viewers should share most frames, common seqs: {common:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_reading_viewer_is_dropped_without_slowing_others() {
    let d = Daemon::start(|c| {
        c.interval = Duration::from_millis(100);
        c.write_timeout = Duration::from_millis(800);
        // Big frames fill the socket buffers quickly.
        c.synthetic = SyntheticSize {
            processes: 600,
            sockets_per_process: 1,
        };
    })
    .await;
    let mut stalled = d.subscribed(100, None).await;
    let mut good = d.subscribed(100, None).await;
    let started = Instant::now();
    let msgs = good.collect_for(Duration::from_secs(3)).await;
    let got = seqs(&msgs);
    // 100 ms ticks for 3 s: ~30 frames; the stalled viewer must not hold them up.
    assert!(got.len() >= 20, "good viewer got {} frames", got.len());
    let max_gap = got.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(max_gap <= 3, "good viewer skipped {max_gap} ticks: {got:?}");

    // The stalled viewer was dropped: draining its buffer ends in EOF (the
    // write that timed out may have left half a frame).
    let mut frames = 0;
    loop {
        match tokio::time::timeout(WAIT, read_frame_async(&mut stalled.stream)).await {
            Ok(Ok(Some(_))) => frames += 1,
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => panic!(
                "stalled viewer still connected after {:?}",
                started.elapsed()
            ),
        }
    }
    assert!(
        frames < 20,
        "stalled viewer was not cut off ({frames} frames)"
    );
    // And the good one keeps going.
    good.snapshot().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_gets_full_history_at_once() {
    let d = Daemon::start(|c| c.interval = Duration::from_millis(100)).await;
    let mut early = d.subscribed(100, None).await;
    // Let the daemon build up history.
    loop {
        if early.snapshot().await.totals.history.len() >= 10 {
            break;
        }
    }
    let mut late = d.subscribed(1000, None).await;
    let first = late.snapshot().await;
    assert!(
        first.totals.history.len() >= 10,
        "first frame carries the history, got {}",
        first.totals.history.len()
    );
    assert!(first.processes.iter().any(|p| p.history.len() >= 10));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_negotiation_fastest_wins_each_at_own_pace() {
    let d = Daemon::start(|c| c.interval = Duration::from_secs(1)).await;
    let mut slow = d.subscribed(1000, None).await;
    let mut fast = d.subscribed(200, None).await;
    // Skip the immediate frames sent on Subscribe and let the daemon re-plan.
    slow.snapshot().await;
    fast.snapshot().await;
    fast.snapshot().await;
    let (slow_msgs, fast_msgs) = tokio::join!(
        slow.collect_for(Duration::from_secs(3)),
        fast.collect_for(Duration::from_secs(3))
    );
    let fast_seqs = seqs(&fast_msgs);
    let slow_seqs = seqs(&slow_msgs);
    assert!(
        (11..=17).contains(&fast_seqs.len()),
        "fast viewer: {} frames in 3 s",
        fast_seqs.len()
    );
    assert!(
        (2..=4).contains(&slow_seqs.len()),
        "slow viewer: {} frames in 3 s",
        slow_seqs.len()
    );
    // The daemon samples at 200 ms: the fast viewer sees consecutive seqs, and
    // the snapshot says what interval produced it.
    assert!(
        fast_seqs.windows(2).all(|w| w[1] - w[0] <= 2),
        "{fast_seqs:?}"
    );
    let intervals: Vec<u32> = fast_msgs
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Snapshot(s) => Some(s.interval_ms),
            _ => None,
        })
        .collect();
    let median = {
        let mut v = intervals.clone();
        v.sort();
        v[v.len() / 2]
    };
    assert!(
        (150..=260).contains(&median),
        "sampling interval {intervals:?}"
    );
    // The slow viewer skips ~4 of every 5 ticks.
    assert!(
        slow_seqs.windows(2).all(|w| w[1] - w[0] >= 3),
        "{slow_seqs:?}"
    );

    // When the fast viewer leaves, the daemon slows back down.
    drop(fast);
    slow.snapshot().await;
    let a = slow.snapshot().await;
    let b = slow.snapshot().await;
    assert!(
        b.seq - a.seq <= 2,
        "back to 1 s sampling: {} -> {}",
        a.seq,
        b.seq
    );
    assert!(b.interval_ms >= 800, "interval {}", b.interval_ms);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_goes_only_to_the_viewer_that_asked() {
    let d = Daemon::start(|_| {}).await;
    let pid = 10_003;
    let mut asker = d.subscribed(200, Some(pid)).await;
    let mut other = d.subscribed(200, None).await;
    let (a, b) = tokio::join!(
        asker.collect_for(Duration::from_millis(1500)),
        other.collect_for(Duration::from_millis(1500))
    );
    let details: Vec<&Detail> = a
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Detail(d) => Some(d),
            _ => None,
        })
        .collect();
    assert!(details.len() >= 3, "asker got {} details", details.len());
    for det in &details {
        assert_eq!(det.pid, pid);
        assert_eq!(det.start_time, 1_003);
        assert_eq!(det.connections.len(), 4, "synthetic: 4 sockets per process");
    }
    // Each Detail follows the Snapshot it belongs to.
    for w in a.windows(2) {
        if matches!(w[1], ServerMsg::Detail(_)) {
            assert!(matches!(w[0], ServerMsg::Snapshot(_)));
        }
    }
    assert!(seqs(&b).len() >= 3);
    assert!(
        !b.iter().any(|m| matches!(m, ServerMsg::Detail(_))),
        "detail leaked to a viewer that did not ask"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_detail_request_is_answered_without_waiting_for_the_next_tick() {
    let d = Daemon::start(|c| c.interval = Duration::from_secs(10)).await;
    let mut v = d.subscribed(10_000, None).await;
    let first = v.snapshot().await;
    let asked = Instant::now();
    v.send(&ClientMsg::Subscribe {
        interval_ms: 10_000,
        detail_pid: Some(10_005),
    })
    .await;
    let detail = loop {
        match v.recv_within(Duration::from_secs(3)).await {
            Ok(Some(ServerMsg::Detail(det))) => break det,
            Ok(Some(ServerMsg::Snapshot(s))) => {
                assert_eq!(s.seq, first.seq, "no new sample needed")
            }
            other => panic!("no detail within 3 s of asking (ticks are 10 s apart): {other:?}"),
        }
    };
    assert!(asked.elapsed() < Duration::from_secs(3));
    assert_eq!(detail.pid, 10_005);
    assert_eq!(detail.start_time, 1_005);
    assert_eq!(detail.connections.len(), 4);
    d.stop().await;
}
