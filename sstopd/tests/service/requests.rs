//! Bad input, the connection cap, kill routing.

use std::time::{Duration, Instant};

use crate::harness::*;
use proto::*;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_ends_only_that_session() {
    let d = Daemon::start(|c| {
        c.handshake_timeout = Duration::from_millis(700);
        c.interval = Duration::from_millis(100);
    })
    .await;
    let mut good = d.subscribed(100, None).await;
    let watcher = tokio::spawn(async move {
        let msgs = good.collect_for(Duration::from_secs(3)).await;
        (good, msgs)
    });

    // Garbage as the first frame.
    let mut v = d.viewer().await;
    v.send_raw(&[0, 0, 0, 6, 0xde, 0xad, 0xbe, 0xef, 0xff, 0x01])
        .await;
    v.expect_error_then_eof(ErrorCode::BadRequest).await;

    // An oversized length: refused before the daemon reads (or allocates) it.
    let mut v = d.viewer().await;
    v.send_raw(&u32::MAX.to_be_bytes()).await;
    let msg = v.expect_error_then_eof(ErrorCode::FrameTooLarge).await;
    assert!(msg.contains("limit"), "{msg}");

    // Half a frame, then silence: the handshake times out.
    let mut v = d.viewer().await;
    v.send_raw(&[0, 0, 0, 50, 0, 1]).await;
    let t = Instant::now();
    v.expect_error_then_eof(ErrorCode::BadRequest).await;
    assert!(t.elapsed() < Duration::from_secs(3));

    // Connect and say nothing at all.
    let mut v = d.viewer().await;
    v.expect_error_then_eof(ErrorCode::BadRequest).await;

    // Something other than Hello first.
    let mut v = d.viewer().await;
    v.send(&ClientMsg::Ping).await;
    let msg = v.expect_error_then_eof(ErrorCode::BadRequest).await;
    assert!(msg.contains("Hello"), "{msg}");

    // Garbage after a good handshake.
    let mut v = d.subscribed(100, None).await;
    v.snapshot().await;
    v.send_raw(&[0, 0, 0, 3, 0x7f, 0x7f, 0x7f]).await;
    let mut saw_error = false;
    while let Some(m) = v.recv().await {
        match m {
            ServerMsg::Error { code, .. } => {
                assert_eq!(code, ErrorCode::BadRequest);
                saw_error = true;
            }
            ServerMsg::Snapshot(_) => assert!(!saw_error, "frames after the error"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_error);

    // Random bytes from many connections at once.
    for i in 0..20u8 {
        let mut v = d.viewer().await;
        let junk: Vec<u8> = (0..200u16)
            .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i))
            .collect();
        let _ = v.stream.write_all(&junk).await;
    }

    // Meanwhile the good viewer kept its frame rate.
    let (_good, msgs) = watcher.await.unwrap();
    let got = seqs(&msgs);
    assert!(
        got.len() >= 20,
        "good viewer got {} frames in 3 s",
        got.len()
    );
    let max_gap = got.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(max_gap <= 3, "good viewer stalled: {got:?}");
    // And new viewers are still welcome.
    d.subscribed(100, None).await.snapshot().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_refuses_clearly() {
    let d = Daemon::start(|c| c.max_viewers = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(d.subscribed(200, None).await);
    }
    for v in held.iter_mut() {
        v.snapshot().await;
    }
    let mut extra = d.viewer().await;
    extra
        .send(&ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            client: "one too many".into(),
        })
        .await;
    let msg = extra.expect_error_then_eof(ErrorCode::TooManyViewers).await;
    assert!(msg.contains("3 viewers"), "{msg}");

    // A slot frees when a viewer leaves.
    drop(held.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        let mut v = d.viewer().await;
        v.send(&ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            client: "retry".into(),
        })
        .await;
        match v.recv().await {
            Some(ServerMsg::Welcome(_)) => break,
            Some(ServerMsg::Error {
                code: ErrorCode::TooManyViewers,
                ..
            }) => {
                assert!(Instant::now() < deadline, "slot never freed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_requests_are_answered_to_the_asker_and_rate_limited() {
    let d = Daemon::start(|_| {}).await;
    let mut asker = d.viewer().await;
    asker.hello().await;
    let mut bystander = d.subscribed(200, None).await;
    // A pid beyond pid_max: no real process can be hit whatever the policy says.
    let pid = 4_000_000_000;
    for _ in 0..25 {
        asker
            .send(&ClientMsg::Kill {
                pid,
                start_time: 1,
                signal: Signal::Term,
            })
            .await;
    }
    let mut outcomes = Vec::new();
    while outcomes.len() < 25 {
        match asker.recv().await {
            Some(ServerMsg::KillResult(r)) => {
                assert_eq!(r.pid, pid);
                assert_eq!(r.signal, Signal::Term);
                assert!(!r.message.is_empty());
                outcomes.push(r.outcome);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let limited = outcomes
        .iter()
        .filter(|o| **o == KillOutcome::RateLimited)
        .count();
    assert_eq!(limited, 5, "burst of 20, then limited: {outcomes:?}");
    assert!(
        outcomes[..20]
            .iter()
            .all(|o| *o != KillOutcome::RateLimited)
    );
    assert!(outcomes.iter().all(|o| *o != KillOutcome::Sent));
    let seen = bystander.collect_for(Duration::from_millis(600)).await;
    assert!(!seen.iter().any(|m| matches!(m, ServerMsg::KillResult(_))));
    d.stop().await;
}
