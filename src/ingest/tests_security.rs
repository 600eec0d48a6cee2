//! Security formats: fixtures written after each tool's documented example.
