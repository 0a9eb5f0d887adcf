//! The table's shape as the code uses it. `template.yaml` declares the table; a test checks that
//! this mirror matches it, so the two cannot drift.

/// A secondary index: its name and the attributes of its partition and sort keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSpec {
    /// The logical resource name in `template.yaml`.
    pub resource: &'static str,
    pub indexes: &'static [IndexSpec],
    /// The attribute DynamoDB's TTL reads (epoch seconds).
    pub ttl_attribute: &'static str,
}

impl TableSpec {
    pub fn index(&self, name: &str) -> Option<&IndexSpec> {
        self.indexes.iter().find(|i| i.name == name)
    }
}

/// General-purpose inverted index: `gsi1pk` groups items, `gsi1sk` orders them.
pub const GSI1: &str = "gsi1";

/// The one table (single-table design: every entity is keyed by `pk`/`sk` prefixes).
pub const TABLE: TableSpec = TableSpec {
    resource: "RenjiTable",
    indexes: &[IndexSpec {
        name: GSI1,
        pk: "gsi1pk",
        sk: "gsi1sk",
    }],
    ttl_attribute: "ttl",
};
