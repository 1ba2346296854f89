//! Integration tests, one binary: real HTTP servers on 127.0.0.1:0 serving
//! fixture feeds, real sled stores in temp dirs, real parsing.

mod browser;
mod cli;
mod comments;
mod database_faults;
mod digest;
mod feedparser_suite;
mod heat;
mod hostile;
mod instances;
mod layout;
mod lifecycle;
mod pipeline;
mod postgres_pass;
mod props;
mod readers;
mod rules;
mod server;
mod status_and_admin;
mod store_copy;
mod support;
mod websub;
