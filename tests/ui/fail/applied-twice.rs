// Two `#[tracked]` on one fn would make each call two nested units with
// two catalogue sites; the second is reported.
#[tracked::tracked(type = "Network")]
#[tracked::tracked]
async fn twice(peer: u32) -> u32 {
    peer
}

use tracked::tracked;

#[tracked]
#[doc = "documented"]
#[tracked(type = "Consensus")]
async fn twice_imported(round: u32) -> u32 {
    round
}

fn main() {
    let _ = twice(1);
    let _ = twice_imported(1);
}
