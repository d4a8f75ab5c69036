//! Pages for platform operators; each refuses (403) anyone without the platform admin flag.

pub mod pages;
