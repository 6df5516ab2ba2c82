//! macOS collectors: parsers over command output (portable), command runs (macOS only).
