// `crate = …` names the runtime for a crate that reaches `tracked` through
// another: a re-export here (the failing twin, `crate-path-missing.rs`,
// shows the path is the one used). A `macro_rules!` can pass
// `crate = $crate::tracked`.
mod obs {
    pub use ::tracked;
}

#[tracked::tracked(type = "Network", crate = crate::obs::tracked)]
async fn accept() {
    tokio::spawn(handle());
}

#[tracked::tracked(crate = "crate::obs::tracked")]
async fn handle() {}

fn main() {
    drop(accept());
}
