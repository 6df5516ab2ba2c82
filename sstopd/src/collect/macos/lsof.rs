//! `lsof -nP -F` parser. (in progress)
