//! Unit tests of the console: who may do what, and what the pages show for a view.

mod auth;
mod present;
