//! The wire protocol between `sstopd` (daemon) and `sstop` (viewer).
//!
//! This crate is the only contract between the two sides. Nothing else in the
//! workspace touches bytes on the socket.
//!
//! # Frames
//!
//! ```text
//! +----------------------+-----------------------------------------+
//! | length: u32, BE      | payload: bincode 2 (standard config)    |
//! | (payload bytes only) | of a ClientMsg or a ServerMsg           |
//! +----------------------+-----------------------------------------+
//! ```
//!
//! * The length prefix is big-endian and counts payload bytes only.
//! * A length above [`MAX_FRAME_LEN`] is refused *before* anything is
//!   allocated for it; the peer loses its connection. The daemon holds
//!   viewers to the much smaller [`MAX_CLIENT_FRAME_LEN`] (their messages
//!   are a few bytes), via [`read_frame_async_max`].
//! * The payload format does not describe itself: a field added anywhere
//!   decodes as garbage on the other side. So every change to
//!   [`model`] or [`message`] bumps [`PROTOCOL_VERSION`], and the golden-byte
//!   tests in `tests/golden.rs` fail until the bump is made deliberately.
//!
//! # Handshake
//!
//! The client's first frame is [`ClientMsg::Hello`]. The daemon answers
//! [`ServerMsg::Welcome`] when it speaks that version, otherwise
//! [`ServerMsg::Error`] with [`ErrorCode::VersionMismatch`] and a sentence a
//! person can act on. `Hello` and `Error` are variant 0 of their enums and
//! never change shape, so two different versions can always tell each other
//! that they differ.

pub mod codec;
pub mod error;
pub mod message;
pub mod model;

pub use codec::{
    FrameDecoder, MAX_CLIENT_FRAME_LEN, MAX_FRAME_LEN, decode_payload, encode_frame, read_frame,
    write_frame,
};
#[cfg(feature = "tokio")]
pub use codec::{read_frame_async, read_frame_async_max, write_frame_async};
pub use error::CodecError;
pub use message::*;
pub use model::*;

/// Version of the wire format. Bump on any change to `model` or `message`.
pub const PROTOCOL_VERSION: u32 = 1;
