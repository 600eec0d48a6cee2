//! Unit tests of the Kafka shell that need a broker: librdkafka's mock cluster in this process.

mod send;
