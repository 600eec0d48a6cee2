//! Unit tests of the Kafka shell: its pure parts (the view and the incident timeline), and what
//! needs a broker (sending, against librdkafka's mock cluster in this process).

mod changelog;
mod inflight;
mod restore;
mod send;
mod view;
