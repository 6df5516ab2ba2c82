//! `netstat -ibn` parser. (in progress)
