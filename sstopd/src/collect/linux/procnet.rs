//! /proc/net/{tcp,tcp6,udp,udp6,raw,raw6,icmp,icmp6} parsers. (in progress)
