use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const ETH_V4: &str = "020000000002 020000000001 0800";
const ETH_V6: &str = "020000000002 020000000001 86dd";

#[test]
fn ethernet_ipv4_udp() {
    // 192.0.2.10:5000 → 198.51.100.7:53, UDP length 16 → 8 payload bytes.
    let f = hex(&format!(
        "{ETH_V4} 45000024 00010000 40110000 c000020a c6336407 13880035 00100000 6162636465666768"
    ));
    let p = decode(LinkType::Ethernet, &f, f.len() as u32).unwrap();
    assert_eq!(p.proto, Proto::Udp);
    assert_eq!(p.src, sa("192.0.2.10:5000"));
    assert_eq!(p.dst, sa("198.51.100.7:53"));
    assert_eq!(p.ip_len, 36);
    assert_eq!(p.payload, 8);
    assert!(!p.truncated);
}

#[test]
fn ipv6_with_hop_by_hop_header() {
    // payload length 8 (HBH) + 8 (UDP) + 10; HBH next header 17, length 0 (8 bytes).
    let f = hex(&format!(
        "{ETH_V6} 60000000 001a 00 40 20010db8000000000000000000000001 20010db8000000000000000000000007
         11 00 010400000000
         d43101bb 00120000 30313233343536373839"
    ));
    let p = decode(LinkType::Ethernet, &f, f.len() as u32).unwrap();
    assert_eq!(p.proto, Proto::Udp);
    assert_eq!(p.src, sa("[2001:db8::1]:54321"));
    assert_eq!(p.dst, sa("[2001:db8::7]:443"));
    assert_eq!(p.ip_len, 40 + 26);
    assert_eq!(p.payload, 10);
}

#[test]
fn padded_syn_counts_no_payload_b17() {
    let f = hex("020000000002 020000000001 0800
                 4500002812344000 40063c57 c000020a c6336407
                 c73801bb 00000001 00000000 5002faf0 ffb70000
                 000000000000");
    assert_eq!(f.len(), 60);
    let p = decode(LinkType::Ethernet, &f, 60).unwrap();
    assert_eq!(p.proto, Proto::Tcp);
    assert_eq!(p.src, sa("192.0.2.10:51000"));
    assert_eq!(p.dst, sa("198.51.100.7:443"));
    assert_eq!(p.ip_len, 40);
    assert_eq!(p.payload, 0, "the 6 pad bytes are not payload");
    assert!(!p.truncated);
}

#[test]
fn snaplen_cut_frame_counts_the_header_length() {
    // IPv4 total length 1500, UDP length 1480; only 58 bytes captured.
    let full = hex(&format!(
        "{ETH_V4} 450005dc 00010000 40110000 c000020a c6336407 13880035 05c80000"
    ));
    let mut f = full.clone();
    f.resize(58, 0x61);
    let p = decode(LinkType::Ethernet, &f, 1514).unwrap();
    assert_eq!(p.ip_len, 1500);
    assert_eq!(p.payload, 1472);
    assert!(p.truncated);
}

#[test]
fn ipv6_payload_length_zero_uses_the_captured_length() {
    // Cooked capture (no link header): payload length 0, UDP length 0, 100 data bytes.
    let mut f = hex(
        "60000000 0000 11 40 00000000000000000000000000000001 00000000000000000000000000000001
                     c0001f90 00000000",
    );
    f.resize(40 + 8 + 100, 0x7a);
    let p = decode(
        LinkType::Cooked {
            protocol: ETH_P_IPV6,
        },
        &f,
        f.len() as u32,
    )
    .unwrap();
    assert_eq!(p.ip_len, 148);
    assert_eq!(p.payload, 100);
    assert_eq!(p.dst, sa("[::1]:8080"));
}

#[test]
fn tun_frame_without_link_header_b14() {
    let mut f = hex("4500002abc1d400040112a36c6336401c6336407 d0f714e9 00160000");
    f.extend_from_slice(b"hello over tun");
    assert_eq!(f.len(), 42);
    let link = LinkType::from_arphrd(65534).unwrap();
    assert_eq!(link, LinkType::RawIp);
    let p = decode(link, &f, 42).unwrap();
    assert_eq!(p.proto, Proto::Udp);
    assert_eq!(p.ip_len, 42);
    assert_eq!(p.payload, 14);
    assert_eq!(p.src, sa("198.51.100.1:53495"));
    assert_eq!(p.dst, sa("198.51.100.7:5353"));
    // The classic mistake: read as Ethernet, bytes 12–13 (c6 33) are no IP ethertype.
    assert_eq!(decode(LinkType::Ethernet, &f, 42), Err(Skip::NotIp));
    // Same bytes through a cooked socket (sll_protocol = IPv4).
    let cooked = decode(LinkType::Cooked { protocol: ETH_P_IP }, &f, 42).unwrap();
    assert_eq!(cooked, p);
    // PPP and tunnels decode as raw IP too; nlmon (824) and monitor Wi-Fi (803) are unknown.
    for t in [512, 768, 776, 778] {
        assert_eq!(LinkType::from_arphrd(t), Some(LinkType::RawIp));
    }
    assert_eq!(LinkType::from_arphrd(824), None);
    assert_eq!(LinkType::from_arphrd(803), None);
}

#[test]
fn arp_frame_is_ignored() {
    let f = hex("ffffffffffff 020000000001 0806
                 0001 0800 06 04 0001 020000000001 c000020a 000000000000 c000020b");
    assert_eq!(decode(LinkType::Ethernet, &f, 42), Err(Skip::NotIp));
    assert_eq!(
        decode(LinkType::Cooked { protocol: 0x0806 }, &f[14..], 28),
        Err(Skip::NotIp)
    );
}

#[test]
fn gso_super_frame_65549_bytes_b16() {
    // IPv4 total 65535, TCP header 32 bytes (timestamps): payload 65483.
    let mut f = hex(&format!(
        "{ETH_V4} 4500ffff 00014000 40060000 7f000001 7f000001 c35046b5 00000001 00000000 8010ffff 00000000 0101080a0000000100000001"
    ));
    f.resize(65_549, 0x7a);
    let p = decode(LinkType::Ethernet, &f, 65_549).unwrap();
    assert_eq!(p.proto, Proto::Tcp);
    assert_eq!(p.ip_len, 65_535);
    assert_eq!(p.payload, 65_535 - 20 - 32);
    assert!(!p.truncated);

    // BIG TCP: total length 0, the frame length is the packet (only the head captured).
    let mut big = f[..14 + 52].to_vec();
    big[16] = 0;
    big[17] = 0;
    let p = decode(LinkType::Ethernet, &big, 14 + 150_000).unwrap();
    assert_eq!(p.ip_len, 150_000);
    assert_eq!(p.payload, 150_000 - 52);
    assert!(p.truncated);
}

#[test]
fn fragments_count_once_by_the_udp_length() {
    // First fragment (MF set): UDP length 3008 covers the whole datagram.
    let first =
        hex("45000024 00012000 40110000 c000020a c6336407 13880035 0bc00000 6162636465666768");
    let p = parse_ip(&first, 36).unwrap();
    assert_eq!(p.payload, 3000);
    let later =
        hex("45000024 000100b9 40110000 c000020a c6336407 6162636465666768 6162636465666768");
    assert_eq!(parse_ip(&later, 36), Err(Skip::LaterFragment));
}

#[test]
fn icmp_echo_carries_identifier_and_counts_ip_payload() {
    // Echo request id 0x1234, 1000 data bytes → IP payload 1008.
    let mut f = hex("45000404 00010000 40010000 c0a80001 c0a80002 0800 0000 1234 0001");
    f.resize(1028, 0x55);
    let p = parse_ip(&f, 1028).unwrap();
    assert_eq!(p.proto, Proto::Icmp);
    assert_eq!(p.payload, 1008);
    assert_eq!(p.src.port(), 0x1234);
    assert_eq!(p.dst.port(), 0x1234);
}

#[test]
fn other_protocol_counts_ip_payload() {
    let mut f = hex("45000078 00010000 40fd0000 0a000001 0a000002");
    f.resize(120, 0);
    let p = parse_ip(&f, 120).unwrap();
    assert_eq!(p.proto, Proto::Ip(253));
    assert_eq!(p.payload, 100);
    assert_eq!(p.src, sa("10.0.0.1:0"));
}

#[test]
fn garbage_never_panics() {
    for len in 0..80 {
        let f: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        for link in [
            LinkType::Ethernet,
            LinkType::RawIp,
            LinkType::Cooked { protocol: ETH_P_IP },
        ] {
            let _ = decode(link, &f, len as u32);
        }
        let mut v4 = f.clone();
        if let Some(b) = v4.first_mut() {
            *b = 0x4f;
        }
        let _ = parse_ip(&v4, 0);
        let mut v6 = f.clone();
        if let Some(b) = v6.first_mut() {
            *b = 0x60;
        }
        let _ = parse_ip(&v6, 0);
    }
}
