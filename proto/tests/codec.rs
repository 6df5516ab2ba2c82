//! Round-trip property tests and decoder behaviour on hostile or broken input.

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proto::*;

// ---------- strategies ----------

fn text() -> impl Strategy<Value = String> {
    // Odd names included: spaces, parentheses, replacement characters, wide chars.
    prop_oneof![
        "[a-z0-9 ()._-]{0,20}",
        "\\PC{0,12}",
        Just("we ird) (x".to_string()),
        Just("ab\u{fffd}\u{fffd}cd".to_string()),
    ]
}

fn rate() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 0.0..1e12f64, Just(f64::MAX)]
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn sockaddr() -> impl Strategy<Value = SocketAddr> {
    (ip(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(a, p))
}

fn traffic() -> impl Strategy<Value = Traffic> {
    (rate(), rate(), any::<u64>(), any::<u64>()).prop_map(|(u, d, ub, db)| Traffic {
        up_bps: u,
        down_bps: d,
        up_bytes: ub,
        down_bytes: db,
    })
}

fn proto_kind() -> impl Strategy<Value = Proto> {
    prop_oneof![
        Just(Proto::Tcp),
        Just(Proto::Udp),
        Just(Proto::Icmp),
        Just(Proto::Icmpv6),
        Just(Proto::Sctp),
        any::<u8>().prop_map(Proto::Ip),
    ]
}

fn signal() -> impl Strategy<Value = Signal> {
    prop_oneof![
        (0..Signal::LISTED.len()).prop_map(|i| Signal::LISTED[i]),
        any::<i32>().prop_map(Signal::Other),
    ]
}

fn history() -> impl Strategy<Value = Vec<RatePoint>> {
    vec(
        (0.0..1e9f32, 0.0..1e9f32).prop_map(|(up, down)| RatePoint { up, down }),
        0..=HISTORY_LEN,
    )
}

fn process() -> impl Strategy<Value = Process> {
    (
        (any::<u32>(), any::<u32>(), any::<u64>(), any::<u32>()),
        (text(), text(), text()),
        traffic(),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>()),
        (0..3u8, history()),
    )
        .prop_map(
            |(
                (pid, ppid, start_time, uid),
                (user, name, cmdline),
                traffic,
                counts,
                (t, history),
            )| {
                Process {
                    pid,
                    ppid,
                    start_time,
                    uid,
                    user,
                    name,
                    cmdline,
                    traffic,
                    connections: counts.0,
                    listening: counts.1,
                    shared: counts.2,
                    alive: counts.3,
                    trend: [Trend::Rising, Trend::Falling, Trend::Steady][t as usize],
                    history,
                }
            },
        )
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    let interface = (
        text(),
        any::<bool>(),
        any::<bool>(),
        rate(),
        rate(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(name, is_up, is_default, rx_bps, tx_bps, rx_bytes, tx_bytes)| Interface {
                name,
                is_up,
                is_default,
                rx_bps,
                tx_bps,
                rx_bytes,
                tx_bytes,
            },
        );
    let host = (
        ip(),
        traffic(),
        any::<u32>(),
        vec(any::<u16>(), 0..4),
        vec(text(), 0..3),
    )
        .prop_map(
            |(addr, traffic, connections, ports, processes)| RemoteHost {
                addr,
                traffic,
                connections,
                ports,
                processes,
            },
        );
    let listen = (proto_kind(), ip(), any::<u16>(), any::<u32>(), text()).prop_map(
        |(proto, addr, port, pid, name)| ListenPort {
            proto,
            addr,
            port,
            pid,
            name,
        },
    );
    let unattributed =
        (proto_kind(), traffic(), any::<u32>()).prop_map(|(proto, traffic, connections)| {
            Unattributed {
                proto,
                traffic,
                connections,
            }
        });
    let note =
        (any::<bool>(), text()).prop_map(|(w, m)| if w { Note::warning(m) } else { Note::info(m) });
    (
        (
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            0..4usize,
            vec(note, 0..3),
            any::<u64>(),
        ),
        vec(interface, 0..3),
        (traffic(), history()),
        vec(process(), 0..6),
        (vec(unattributed, 0..2), vec(host, 0..3), vec(listen, 0..3)),
    )
        .prop_map(
            |(
                (seq, time_ms, interval_ms, mode, notes, capture_drops),
                interfaces,
                totals,
                processes,
                rest,
            )| {
                let mode = [
                    CollectorMode::Netlink,
                    CollectorMode::Packet,
                    CollectorMode::Macos,
                    CollectorMode::Synthetic,
                ][mode];
                Snapshot {
                    seq,
                    time_ms,
                    interval_ms,
                    collector: CollectorInfo {
                        mode,
                        notes,
                        capture_drops,
                    },
                    interfaces,
                    totals: Totals {
                        traffic: totals.0,
                        history: totals.1,
                    },
                    processes,
                    unattributed: rest.0,
                    remote_hosts: rest.1,
                    listen_ports: rest.2,
                }
            },
        )
}

fn connection() -> impl Strategy<Value = Connection> {
    (
        proto_kind(),
        sockaddr(),
        option::of(sockaddr()),
        option::of(any::<u8>().prop_map(TcpState::from_kernel)),
        any::<u64>(),
        traffic(),
        any::<u16>(),
    )
        .prop_map(
            |(proto, local, remote, state, age_ms, traffic, owners)| Connection {
                proto,
                local,
                remote,
                state,
                age_ms,
                traffic,
                owners,
            },
        )
}

fn client_msg() -> impl Strategy<Value = ClientMsg> {
    prop_oneof![
        (any::<u32>(), text()).prop_map(|(protocol, client)| ClientMsg::Hello { protocol, client }),
        (any::<u32>(), option::of(any::<u32>())).prop_map(|(interval_ms, detail_pid)| {
            ClientMsg::Subscribe {
                interval_ms,
                detail_pid,
            }
        }),
        (any::<u32>(), any::<u64>(), signal()).prop_map(|(pid, start_time, signal)| {
            ClientMsg::Kill {
                pid,
                start_time,
                signal,
            }
        }),
        Just(ClientMsg::Ping),
    ]
}

fn server_msg() -> impl Strategy<Value = ServerMsg> {
    let code = prop_oneof![
        Just(ErrorCode::VersionMismatch),
        Just(ErrorCode::BadRequest),
        Just(ErrorCode::TooManyViewers),
        Just(ErrorCode::FrameTooLarge),
        Just(ErrorCode::Internal),
    ];
    let outcome = prop_oneof![
        Just(KillOutcome::Sent),
        Just(KillOutcome::Denied),
        Just(KillOutcome::Stale),
        Just(KillOutcome::Gone),
        Just(KillOutcome::RateLimited),
        Just(KillOutcome::Failed),
    ];
    let welcome = (
        any::<u32>(),
        text(),
        text(),
        text(),
        any::<[bool; 4]>(),
        any::<u32>(),
    )
        .prop_map(|(protocol, daemon, host, os, c, viewer_uid)| {
            ServerMsg::Welcome(Welcome {
                protocol,
                daemon,
                host,
                os,
                collector: CollectorMode::Netlink,
                caps: Caps {
                    kill: c[0],
                    packet_bytes: c[1],
                    closed_connections: c[2],
                    all_users: c[3],
                },
                viewer_uid,
            })
        });
    prop_oneof![
        (code, text()).prop_map(|(code, message)| ServerMsg::Error { code, message }),
        welcome,
        snapshot().prop_map(|s| ServerMsg::Snapshot(Box::new(s))),
        (any::<u32>(), any::<u64>(), vec(connection(), 0..5)).prop_map(
            |(pid, start_time, connections)| ServerMsg::Detail(Detail {
                pid,
                start_time,
                connections
            })
        ),
        (any::<u32>(), signal(), outcome, text()).prop_map(|(pid, signal, outcome, message)| {
            ServerMsg::KillResult(KillResult {
                pid,
                signal,
                outcome,
                message,
            })
        }),
        Just(ServerMsg::Pong),
    ]
}

// ---------- round trips ----------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn client_messages_round_trip(msg in client_msg()) {
        let frame = encode_frame(&msg).unwrap();
        prop_assert_eq!(u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize, frame.len() - 4);
        let payload = read_frame(&mut Cursor::new(&frame)).unwrap().unwrap();
        prop_assert_eq!(decode_payload::<ClientMsg>(&payload).unwrap(), msg);
    }

    #[test]
    fn server_messages_round_trip(msg in server_msg()) {
        let frame = encode_frame(&msg).unwrap();
        let payload = read_frame(&mut Cursor::new(&frame)).unwrap().unwrap();
        prop_assert_eq!(decode_payload::<ServerMsg>(&payload).unwrap(), msg.clone());
        // The incremental decoder agrees, whatever the chunking.
        let mut dec = FrameDecoder::new();
        let mut out = Vec::new();
        for chunk in frame.chunks(7) {
            dec.push(chunk);
            while let Some(p) = dec.next_payload().unwrap() {
                out.push(p);
            }
        }
        prop_assert_eq!(out.len(), 1);
        prop_assert_eq!(decode_payload::<ServerMsg>(&out[0]).unwrap(), msg);
        prop_assert!(dec.finish().is_ok());
    }

    /// Random bytes never panic and never allocate past the cap; they either
    /// decode or give an error.
    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        let _ = decode_payload::<ServerMsg>(&bytes);
        let _ = decode_payload::<ClientMsg>(&bytes);
        let _ = read_frame(&mut Cursor::new(&bytes));
        let mut dec = FrameDecoder::new();
        dec.push(&bytes);
        while let Ok(Some(p)) = dec.next_payload() {
            let _ = decode_payload::<ServerMsg>(&p);
        }
    }

    /// A valid frame with a few bytes flipped must not panic either.
    #[test]
    fn corrupted_frames_never_panic(msg in server_msg(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut frame = encode_frame(&msg).unwrap();
        let n = frame.len();
        for (i, b) in flips {
            frame[4 + i.index(n - 4).min(n - 5)] ^= b | 1;
        }
        let _ = decode_payload::<ServerMsg>(&frame[4..]);
    }
}

// ---------- decoder behaviour ----------

fn ping_frame() -> Vec<u8> {
    encode_frame(&ClientMsg::Ping).expect("encode ping")
}

#[test]
fn truncated_frame_is_an_error() {
    let frame = encode_frame(&ClientMsg::Hello {
        protocol: 1,
        client: "sstop".into(),
    })
    .unwrap();
    for cut in 1..frame.len() {
        let err = read_frame(&mut Cursor::new(&frame[..cut])).unwrap_err();
        assert!(
            matches!(err, CodecError::Truncated { .. }),
            "cut {cut}: {err}"
        );
        let mut dec = FrameDecoder::new();
        dec.push(&frame[..cut]);
        assert!(dec.next_payload().unwrap().is_none(), "cut {cut}");
        assert!(
            matches!(dec.finish(), Err(CodecError::Truncated { .. })),
            "cut {cut}"
        );
    }
}

#[test]
fn eof_between_frames_is_clean() {
    assert!(
        read_frame(&mut Cursor::new(Vec::<u8>::new()))
            .unwrap()
            .is_none()
    );
    let frame = ping_frame();
    let mut cur = Cursor::new(frame);
    assert!(read_frame(&mut cur).unwrap().is_some());
    assert!(read_frame(&mut cur).unwrap().is_none());
}

#[test]
fn two_frames_in_one_read() {
    let mut bytes = ping_frame();
    bytes.extend(
        encode_frame(&ClientMsg::Subscribe {
            interval_ms: 200,
            detail_pid: None,
        })
        .unwrap(),
    );
    let mut dec = FrameDecoder::new();
    dec.push(&bytes);
    let a = dec.next_payload().unwrap().unwrap();
    let b = dec.next_payload().unwrap().unwrap();
    assert!(dec.next_payload().unwrap().is_none());
    assert_eq!(dec.pending(), 0);
    assert_eq!(decode_payload::<ClientMsg>(&a).unwrap(), ClientMsg::Ping);
    assert_eq!(
        decode_payload::<ClientMsg>(&b).unwrap(),
        ClientMsg::Subscribe {
            interval_ms: 200,
            detail_pid: None
        }
    );
    // The blocking reader takes them one at a time from the same buffer.
    let mut cur = Cursor::new(bytes);
    assert!(read_frame(&mut cur).unwrap().is_some());
    assert!(read_frame(&mut cur).unwrap().is_some());
    assert!(read_frame(&mut cur).unwrap().is_none());
}

/// A reader that hands out a fixed prefix and then claims an endless stream,
/// counting how much was asked for: an oversized length must be refused
/// before a single payload byte is read or reserved.
struct Endless {
    prefix: Vec<u8>,
    pos: usize,
    payload_reads: usize,
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos < self.prefix.len() {
            let n = buf.len().min(self.prefix.len() - self.pos);
            buf[..n].copy_from_slice(&self.prefix[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.payload_reads += 1;
        buf.fill(0);
        Ok(buf.len())
    }
}

#[test]
fn oversized_length_rejected_before_allocation() {
    for len in [MAX_FRAME_LEN as u32 + 1, u32::MAX] {
        let mut r = Endless {
            prefix: len.to_be_bytes().to_vec(),
            pos: 0,
            payload_reads: 0,
        };
        let err = read_frame(&mut r).unwrap_err();
        assert!(matches!(err, CodecError::FrameTooLarge { .. }), "{err}");
        assert_eq!(r.payload_reads, 0, "payload read despite oversized length");

        let mut dec = FrameDecoder::new();
        dec.push(&len.to_be_bytes());
        assert!(matches!(
            dec.next_payload(),
            Err(CodecError::FrameTooLarge { .. })
        ));
    }
    // Exactly at the cap is allowed (the length itself is not the problem).
    let mut dec = FrameDecoder::new();
    dec.push(&(MAX_FRAME_LEN as u32).to_be_bytes());
    assert!(dec.next_payload().unwrap().is_none());
}

#[test]
fn encoder_refuses_frames_over_the_cap() {
    let huge = ServerMsg::Error {
        code: ErrorCode::Internal,
        message: "x".repeat(MAX_FRAME_LEN + 1),
    };
    assert!(matches!(
        encode_frame(&huge),
        Err(CodecError::FrameTooLarge { .. })
    ));
}

/// A length inside the payload claiming a huge vector must not make the
/// decoder reserve it: it fails on the missing bytes instead.
#[test]
fn hostile_inner_length_is_bounded() {
    // ServerMsg::Snapshot variant (2), then seq/time/interval, mode, notes len = u64::MAX.
    let mut payload = vec![2u8, 0, 0, 0, 0];
    payload.push(253); // varint marker for u64
    payload.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(decode_payload::<ServerMsg>(&payload).is_err());
    // A string length of 2^40 in a Hello.
    let mut payload = vec![0u8, 1, 253];
    payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(decode_payload::<ClientMsg>(&payload).is_err());
}

#[test]
fn trailing_bytes_are_refused() {
    let mut payload = ping_frame()[4..].to_vec();
    payload.push(0);
    assert!(matches!(
        decode_payload::<ClientMsg>(&payload),
        Err(CodecError::TrailingBytes(1))
    ));
}

#[test]
fn unknown_variant_is_an_error_not_a_panic() {
    assert!(decode_payload::<ClientMsg>(&[200]).is_err());
    assert!(decode_payload::<ServerMsg>(&[77]).is_err());
    assert!(decode_payload::<ClientMsg>(&[]).is_err());
}

#[tokio::test]
async fn async_reader_matches_blocking_reader() {
    let mut bytes = ping_frame();
    bytes.extend(ping_frame());
    let (mut a, mut b) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for chunk in bytes.chunks(3) {
            a.write_all(chunk).await.unwrap();
        }
        // Half a frame, then EOF.
        a.write_all(&[0, 0, 0, 9, 1]).await.unwrap();
    });
    for _ in 0..2 {
        let p = read_frame_async(&mut b).await.unwrap().unwrap();
        assert_eq!(decode_payload::<ClientMsg>(&p).unwrap(), ClientMsg::Ping);
    }
    writer.await.unwrap();
    let err = read_frame_async(&mut b).await.unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::Truncated {
                got: 1,
                expected: 9
            }
        ),
        "{err}"
    );

    let (mut a, mut b) = tokio::io::duplex(64);
    tokio::io::AsyncWriteExt::write_all(&mut a, &u32::MAX.to_be_bytes())
        .await
        .unwrap();
    let err = read_frame_async(&mut b).await.unwrap_err();
    assert!(matches!(err, CodecError::FrameTooLarge { .. }), "{err}");
}

#[tokio::test]
async fn daemon_side_cap_is_tighter() {
    let (mut a, mut b) = tokio::io::duplex(64);
    let len = (MAX_CLIENT_FRAME_LEN as u32) + 1;
    tokio::io::AsyncWriteExt::write_all(&mut a, &len.to_be_bytes())
        .await
        .unwrap();
    let err = read_frame_async_max(&mut b, MAX_CLIENT_FRAME_LEN)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CodecError::FrameTooLarge { max, .. } if max == MAX_CLIENT_FRAME_LEN),
        "{err}"
    );
}
