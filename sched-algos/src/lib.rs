//! Bosun scheduler algorithms (first slice in progress).
