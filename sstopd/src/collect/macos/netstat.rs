//! `netstat -anvW` / `-anb` parser. (in progress)
