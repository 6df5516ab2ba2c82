//! Linux collectors.
