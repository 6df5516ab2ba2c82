//! /proc/<pid>/fd → socket inode → owners; /proc/<pid>/stat, cmdline, comm. (in progress)
