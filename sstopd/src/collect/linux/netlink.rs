//! sock_diag dumps of TCP/UDP v4/v6 with tcp_info byte counters. (in progress)
