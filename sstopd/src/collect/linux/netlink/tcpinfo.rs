//! `struct tcp_info` (INET_DIAG_INFO payload) read by offset.
//!
//! The struct only ever grows and the kernel sends its own length (CASES B11), so every
//! field is read only when `len >= offset + size`: an old kernel's short struct yields
//! `None` for the fields it lacks instead of rejecting the whole socket. The crate's
//! typed `TcpInfo` requires the full current size and would drop such entries.

/// Offsets in `struct tcp_info` (include/uapi/linux/tcp.h), stable since they were added.
const BYTES_ACKED: usize = 120;
const BYTES_RECEIVED: usize = 128;
const BYTES_SENT: usize = 200;
const BYTES_RETRANS: usize = 208;

/// Byte counters of one TCP socket as the kernel reported them (`None` = not in this tcp_info).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpCounters {
    /// `tcpi_bytes_acked`: sequence space acked by the peer (payload + our SYN/FIN once acked).
    pub bytes_acked: Option<u64>,
    /// `tcpi_bytes_received`: sequence space received in order (payload + the peer's FIN).
    pub bytes_received: Option<u64>,
    /// `tcpi_bytes_sent`: payload bytes transmitted, retransmissions included (Linux ≥ 4.19).
    pub bytes_sent: Option<u64>,
    /// `tcpi_bytes_retrans`: payload bytes retransmitted (Linux ≥ 4.19).
    pub bytes_retrans: Option<u64>,
}

impl TcpCounters {
    /// Payload bytes transmitted at least once (`bytes_sent - bytes_retrans`): an upper
    /// bound for the acked payload that contains no SYN or FIN.
    pub fn unique_sent(&self) -> Option<u64> {
        Some(self.bytes_sent?.saturating_sub(self.bytes_retrans?))
    }
}

/// Parse an INET_DIAG_INFO payload of any length.
pub fn parse_tcp_info(payload: &[u8]) -> TcpCounters {
    TcpCounters {
        bytes_acked: read_u64(payload, BYTES_ACKED),
        bytes_received: read_u64(payload, BYTES_RECEIVED),
        bytes_sent: read_u64(payload, BYTES_SENT),
        bytes_retrans: read_u64(payload, BYTES_RETRANS),
    }
}

/// tcp_info is in host byte order (it is a plain C struct copied out).
fn read_u64(payload: &[u8], offset: usize) -> Option<u64> {
    let bytes = payload.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_ne_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(len: usize) -> Vec<u8> {
        vec![0u8; len]
    }

    fn put(blob: &mut [u8], offset: usize, value: u64) {
        if offset + 8 <= blob.len() {
            blob[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        } else {
            // Write the part that fits, as a kernel cut mid-field would look.
            let n = blob.len() - offset;
            blob[offset..].copy_from_slice(&value.to_ne_bytes()[..n]);
        }
    }

    #[test]
    fn b11_len_144_has_acked_and_received_only() {
        let mut b = blob(144);
        b[120..128].copy_from_slice(&[0x00, 0x10, 0, 0, 0, 0, 0, 0]);
        b[128..136].copy_from_slice(&[0x00, 0x20, 0, 0, 0, 0, 0, 0]);
        let c = parse_tcp_info(&b);
        assert_eq!(c.bytes_acked, Some(4096));
        assert_eq!(c.bytes_received, Some(8192));
        assert_eq!(c.bytes_sent, None);
        assert_eq!(c.unique_sent(), None);
    }

    #[test]
    fn b11_len_104_has_no_byte_counters() {
        let c = parse_tcp_info(&blob(104));
        assert_eq!(c, TcpCounters::default());
    }

    #[test]
    fn b11_len_280_has_all_three() {
        let mut b = blob(280);
        put(&mut b, 120, 1_000_001);
        put(&mut b, 128, 2_000_001);
        put(&mut b, 200, 1_000_500);
        put(&mut b, 208, 500);
        let c = parse_tcp_info(&b);
        assert_eq!(c.bytes_acked, Some(1_000_001));
        assert_eq!(c.bytes_received, Some(2_000_001));
        assert_eq!(c.bytes_sent, Some(1_000_500));
        assert_eq!(c.bytes_retrans, Some(500));
        assert_eq!(c.unique_sent(), Some(1_000_000));
    }

    #[test]
    fn b11_len_130_reads_acked_but_not_the_cut_received() {
        let mut b = blob(130);
        put(&mut b, 120, 4096);
        put(&mut b, 128, 8192);
        let c = parse_tcp_info(&b);
        assert_eq!(c.bytes_acked, Some(4096));
        assert_eq!(c.bytes_received, None);
        assert_eq!(c.bytes_sent, None);
    }

    #[test]
    fn empty_and_huge_payloads_do_not_panic() {
        assert_eq!(parse_tcp_info(&[]), TcpCounters::default());
        let mut b = blob(4096);
        put(&mut b, 120, u64::MAX);
        assert_eq!(parse_tcp_info(&b).bytes_acked, Some(u64::MAX));
    }
}
