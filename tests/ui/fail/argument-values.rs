use tracked::TaskType;

// A `TaskType` constant where its name is expected: the whole path is
// pointed at, and the string to write is given.
#[tracked::tracked(type = TaskType::NETWORK)]
async fn constant_type() {}

// `key =` with no value, at the end or before the next argument: said at
// the key, as when the `=` is missing.
#[tracked::tracked(owner = )]
async fn empty_owner() {}

#[tracked::tracked(name = , type = "Network")]
async fn empty_name() {}

// A string with no key: the key to write is given.
#[tracked::tracked("Network")]
async fn unnamed_type() {}

// A name given by a macro: the example is a name, not a type.
#[tracked::tracked(name = concat!("net", "::accept"))]
async fn macro_name() {}

// Accepted: a suffixed integer in range.
#[tracked::tracked(tier = 2u8)]
async fn suffixed_tier() {}

fn main() {
    let _ = TaskType::NETWORK;
}
