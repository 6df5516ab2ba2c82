//! perf ring records → typed values. The layouts follow from the attributes we set:
//! `sample_type = TID | TIME | RAW` and `sample_id_all`, which appends `{pid, tid, time}`
//! to every non-sample record.

pub const PERF_RECORD_LOST: u32 = 2;
pub const PERF_RECORD_COMM: u32 = 3;
pub const PERF_RECORD_EXIT: u32 = 4;
/// The kernel paused the event: more samples per tick than `perf_event_max_sample_rate` allows.
pub const PERF_RECORD_THROTTLE: u32 = 5;
pub const PERF_RECORD_FORK: u32 = 7;
pub const PERF_RECORD_SAMPLE: u32 = 9;

/// `struct perf_event_header`.
pub const HEADER_LEN: usize = 8;
/// `sample_id_all` trailer for TID | TIME: pid, tid, time.
const SAMPLE_ID_LEN: usize = 16;

#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    Sample {
        pid: u32,
        tid: u32,
        time: u64,
        raw: &'a [u8],
    },
    /// exec or prctl(PR_SET_NAME): the task's new comm.
    Comm {
        pid: u32,
        tid: u32,
        time: u64,
        comm: &'a [u8],
    },
    Fork {
        tid: u32,
        ptid: u32,
        ppid: u32,
        time: u64,
    },
    Exit {
        pid: u32,
        tid: u32,
        time: u64,
    },
    Lost {
        lost: u64,
    },
    /// Samples were dropped until the next tick.
    Throttle,
    Other,
}

/// Record type and total size from the 8-byte header.
pub fn header(bytes: &[u8]) -> Option<(u32, usize)> {
    let kind = u32::from_ne_bytes(bytes.get(0..4)?.try_into().ok()?);
    let size = u16::from_ne_bytes(bytes.get(6..8)?.try_into().ok()?);
    Some((kind, usize::from(size)))
}

/// Parse one whole record (header included). `None` if it is too short for its type.
pub fn parse(rec: &[u8]) -> Option<Record<'_>> {
    let (kind, _) = header(rec)?;
    let body = rec.get(HEADER_LEN..)?;
    Some(match kind {
        PERF_RECORD_SAMPLE => {
            let size = u32_at(body, 16)? as usize;
            Record::Sample {
                pid: u32_at(body, 0)?,
                tid: u32_at(body, 4)?,
                time: u64_at(body, 8)?,
                raw: body.get(20..20usize.checked_add(size)?)?,
            }
        }
        PERF_RECORD_COMM => {
            let end = body.len().checked_sub(SAMPLE_ID_LEN)?;
            let name = body.get(8..end)?;
            let name = name.split(|b| *b == 0).next().unwrap_or(name);
            Record::Comm {
                pid: u32_at(body, 0)?,
                tid: u32_at(body, 4)?,
                time: trailer_time(body)?,
                comm: name,
            }
        }
        PERF_RECORD_FORK => Record::Fork {
            ppid: u32_at(body, 4)?,
            tid: u32_at(body, 8)?,
            ptid: u32_at(body, 12)?,
            time: u64_at(body, 16)?,
        },
        PERF_RECORD_EXIT => Record::Exit {
            pid: u32_at(body, 0)?,
            tid: u32_at(body, 8)?,
            time: u64_at(body, 16)?,
        },
        PERF_RECORD_LOST => Record::Lost {
            lost: u64_at(body, 8)?,
        },
        PERF_RECORD_THROTTLE => Record::Throttle,
        _ => Record::Other,
    })
}

fn trailer_time(body: &[u8]) -> Option<u64> {
    u64_at(body, body.len().checked_sub(8)?)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut r = kind.to_ne_bytes().to_vec();
        r.extend_from_slice(&0u16.to_ne_bytes());
        r.extend_from_slice(&((8 + body.len()) as u16).to_ne_bytes());
        r.extend_from_slice(body);
        r
    }

    fn words(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn sample_with_raw_data() {
        let raw = [7u8; 12];
        let body = words(&[
            &41u32.to_ne_bytes(),
            &42u32.to_ne_bytes(),
            &123_456u64.to_ne_bytes(),
            &12u32.to_ne_bytes(),
            &raw,
        ]);
        let r = rec(PERF_RECORD_SAMPLE, &body);
        assert_eq!(
            parse(&r),
            Some(Record::Sample {
                pid: 41,
                tid: 42,
                time: 123_456,
                raw: &raw
            })
        );
        // A raw size pointing past the record is rejected, not read out of bounds.
        let lying = words(&[&body[..16], &999u32.to_ne_bytes(), &raw]);
        assert_eq!(parse(&rec(PERF_RECORD_SAMPLE, &lying)), None);
    }

    #[test]
    fn comm_with_padding_and_trailer() {
        let body = words(&[
            &500u32.to_ne_bytes(),
            &500u32.to_ne_bytes(),
            b"nl\xffshort\0\0\0\0\0\0\0\0",
            &500u32.to_ne_bytes(),
            &500u32.to_ne_bytes(),
            &99u64.to_ne_bytes(),
        ]);
        assert_eq!(
            parse(&rec(PERF_RECORD_COMM, &body)),
            Some(Record::Comm {
                pid: 500,
                tid: 500,
                time: 99,
                comm: b"nl\xffshort"
            })
        );
    }

    #[test]
    fn fork_exit_lost_and_truncated() {
        let fe = words(&[
            &10u32.to_ne_bytes(),
            &9u32.to_ne_bytes(),
            &11u32.to_ne_bytes(),
            &8u32.to_ne_bytes(),
            &5u64.to_ne_bytes(),
        ]);
        assert_eq!(
            parse(&rec(PERF_RECORD_FORK, &fe)),
            Some(Record::Fork {
                tid: 11,
                ptid: 8,
                ppid: 9,
                time: 5
            })
        );
        assert_eq!(
            parse(&rec(PERF_RECORD_EXIT, &fe)),
            Some(Record::Exit {
                pid: 10,
                tid: 11,
                time: 5
            })
        );
        let lost = words(&[&1u64.to_ne_bytes(), &17u64.to_ne_bytes()]);
        assert_eq!(
            parse(&rec(PERF_RECORD_LOST, &lost)),
            Some(Record::Lost { lost: 17 })
        );
        assert_eq!(parse(&rec(PERF_RECORD_FORK, &fe[..6])), None);
        assert_eq!(parse(&[1, 2]), None);
        assert_eq!(parse(&rec(77, &[])), Some(Record::Other));
    }
}
