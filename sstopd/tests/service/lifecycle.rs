//! Handshake, version refusal, live and stale sockets, clean stop.

use std::time::Duration;

use crate::harness::*;
use proto::*;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_stream_and_clean_stop() {
    let d = Daemon::start(|_| {}).await;
    let mut v = d.viewer().await;
    let w = v.hello().await;
    assert_eq!(w.protocol, PROTOCOL_VERSION);
    assert_eq!(w.collector, CollectorMode::Synthetic);
    assert_eq!(w.viewer_uid, rustix::process::getuid().as_raw());
    assert_eq!(w.os, std::env::consts::OS);
    assert!(!w.host.is_empty());

    // Nothing streams before Subscribe.
    assert!(v.recv_within(Duration::from_millis(500)).await.is_err());
    v.send(&ClientMsg::Subscribe {
        interval_ms: 200,
        detail_pid: None,
    })
    .await;
    let s = v.snapshot().await;
    assert_eq!(s.processes.len(), 30);
    assert_eq!(s.collector.mode, CollectorMode::Synthetic);
    let next = v.snapshot().await;
    assert!(next.seq > s.seq);

    v.send(&ClientMsg::Ping).await;
    let mut got_pong = false;
    for _ in 0..10 {
        match v.recv().await {
            Some(ServerMsg::Pong) => {
                got_pong = true;
                break;
            }
            Some(ServerMsg::Snapshot(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(got_pong);
    d.stop().await;
    // The viewer sees the end of the stream.
    loop {
        match v.recv().await {
            None => break,
            Some(ServerMsg::Snapshot(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_mismatch_is_refused_in_words() {
    let d = Daemon::start(|_| {}).await;
    let mut newer = d.viewer().await;
    newer
        .send(&ClientMsg::Hello {
            protocol: PROTOCOL_VERSION + 1,
            client: "sstop 9.0".into(),
        })
        .await;
    let msg = newer
        .expect_error_then_eof(ErrorCode::VersionMismatch)
        .await;
    assert!(
        msg.contains(&format!("protocol {}", PROTOCOL_VERSION + 1))
            && msg.contains(&format!("speaks {PROTOCOL_VERSION}"))
            && msg.contains("upgrade sstopd"),
        "{msg}"
    );

    let mut older = d.viewer().await;
    older
        .send(&ClientMsg::Hello {
            protocol: 0,
            client: "sstop 0.0".into(),
        })
        .await;
    let msg = older
        .expect_error_then_eof(ErrorCode::VersionMismatch)
        .await;
    assert!(msg.contains("upgrade sstop (the viewer)"), "{msg}");

    // The daemon is unaffected.
    d.subscribed(200, None).await.snapshot().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_daemon_on_a_live_socket_is_refused() {
    let d = Daemon::start(|_| {}).await;
    let dir = d.path.parent().expect("dir").to_path_buf();
    let mut cfg = config(&dir);
    cfg.socket_path = d.path.clone();
    let err = sstopd::run(cfg, CancellationToken::new())
        .await
        .expect_err("second daemon refused");
    assert!(err.to_string().contains("already running"), "{err}");
    // The binary says so too, and exits non-zero.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sstopd"))
        .args(["--collector", "synthetic", "--socket"])
        .arg(&d.path)
        .output()
        .expect("run sstopd");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already running"), "{stderr}");
    // The first daemon still serves.
    assert!(d.path.exists());
    d.subscribed(200, None).await.snapshot().await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sstopd.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let d = Daemon::start(|c| c.socket_path = path.clone()).await;
    d.subscribed(200, None).await.snapshot().await;
    d.stop().await;
}
