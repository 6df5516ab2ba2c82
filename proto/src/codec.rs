//! The only code that turns messages into bytes and back.
//!
//! bincode 2.0.x (serde mode, standard config: little-endian varints inside
//! the payload) behind a big-endian u32 length prefix. bincode 3.0.0 on
//! crates.io is a placeholder that does not compile and the crate is no
//! longer maintained (RUSTSEC-2025-0141); keeping it here makes a swap (e.g.
//! to wincode, which writes bincode-compatible bytes) a one-file change.

use std::io::{Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::CodecError;

/// Largest payload either side accepts. Checked before allocating.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Largest frame a daemon accepts from a viewer: client messages are a few
/// bytes, so a viewer cannot make the daemon reserve megabytes per connection.
pub const MAX_CLIENT_FRAME_LEN: usize = 64 * 1024;

/// Cap on what decoding may claim in memory, so a hostile length inside a
/// valid-looking frame cannot make us reserve gigabytes.
const DECODE_LIMIT: usize = 4 * MAX_FRAME_LEN;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encode `msg` as a complete frame (length prefix + payload).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, CodecError> {
    let mut frame = vec![0u8; 4];
    bincode::serde::encode_into_std_write(msg, &mut frame, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    let len = frame.len() - 4;
    if len > MAX_FRAME_LEN {
        return Err(CodecError::FrameTooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    frame[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(frame)
}

/// Decode one payload (without its length prefix). The whole payload must be used.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, CodecError> {
    let cfg = config().with_limit::<DECODE_LIMIT>();
    let (msg, used) = bincode::serde::decode_from_slice(payload, cfg)
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != payload.len() {
        return Err(CodecError::TrailingBytes(payload.len() - used));
    }
    Ok(msg)
}

fn check_len(prefix: [u8; 4]) -> Result<usize, CodecError> {
    check_len_max(prefix, MAX_FRAME_LEN)
}

fn check_len_max(prefix: [u8; 4], max: usize) -> Result<usize, CodecError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(CodecError::FrameTooLarge { len, max });
    }
    Ok(len)
}

/// Read one frame's payload. `Ok(None)` on a clean EOF between frames.
pub fn read_frame<R: Read>(r: &mut R) -> Result<Option<Vec<u8>>, CodecError> {
    let mut prefix = [0u8; 4];
    let got = read_full(r, &mut prefix)?;
    if got == 0 {
        return Ok(None);
    }
    if got < 4 {
        return Err(CodecError::Truncated { got, expected: 4 });
    }
    let len = check_len(prefix)?;
    let mut payload = vec![0u8; len];
    let got = read_full(r, &mut payload)?;
    if got < len {
        return Err(CodecError::Truncated { got, expected: len });
    }
    Ok(Some(payload))
}

/// Like `read_exact`, but tells how much arrived before EOF.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, CodecError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

/// Encode and write one message, then flush.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), CodecError> {
    let frame = encode_frame(msg)?;
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Read one frame's payload from an async stream. `Ok(None)` on a clean EOF between frames.
#[cfg(feature = "tokio")]
pub async fn read_frame_async<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<Vec<u8>>, CodecError> {
    read_frame_async_max(r, MAX_FRAME_LEN).await
}

/// [`read_frame_async`] with a tighter cap (`max` ≤ [`MAX_FRAME_LEN`]), e.g.
/// [`MAX_CLIENT_FRAME_LEN`] on the daemon side. Checked before allocating.
#[cfg(feature = "tokio")]
pub async fn read_frame_async_max<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, CodecError> {
    use tokio::io::AsyncReadExt;
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut prefix[got..]).await? {
            0 if got == 0 => return Ok(None),
            0 => return Err(CodecError::Truncated { got, expected: 4 }),
            n => got += n,
        }
    }
    let len = check_len_max(prefix, max.min(MAX_FRAME_LEN))?;
    let mut payload = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match r.read(&mut payload[got..]).await? {
            0 => return Err(CodecError::Truncated { got, expected: len }),
            n => got += n,
        }
    }
    Ok(Some(payload))
}

/// Encode and write one message to an async stream.
#[cfg(feature = "tokio")]
pub async fn write_frame_async<W: tokio::io::AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), CodecError> {
    use tokio::io::AsyncWriteExt;
    let frame = encode_frame(msg)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Incremental decoder for callers that own their read loop: push bytes as
/// they arrive, take complete payloads out.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet form a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete payload, if one has arrived. An oversized length is
    /// an error at once, before its bytes are waited for or stored.
    pub fn next_payload(&mut self) -> Result<Option<Vec<u8>>, CodecError> {
        let Some(prefix) = self.buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = check_len(*prefix)?;
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let payload = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(payload))
    }

    /// At end of stream: an error if a partial frame is left over.
    pub fn finish(&self) -> Result<(), CodecError> {
        match self.buf.len() {
            0 => Ok(()),
            n if n < 4 => Err(CodecError::Truncated {
                got: n,
                expected: 4,
            }),
            n => {
                let expected =
                    u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                        as usize;
                Err(CodecError::Truncated {
                    got: n - 4,
                    expected,
                })
            }
        }
    }
}
