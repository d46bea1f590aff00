use tracked::tracked;

#[tracked(type = "Consensus", name = "round", owner = "validators", tier = 2)]
pub async fn run_round(votes: u32) -> u32 {
    if votes == 0 {
        return 0;
    }
    votes * 2
}

#[tracked]
async fn unit() {}

#[tracked]
async unsafe fn raw(pointer: *const u32) -> u32 {
    *pointer
}

fn main() {
    let _ = run_round(1);
    let _ = unit();
    let value = 1;
    // SAFETY: the pointer is to a live local.
    let _ = unsafe { raw(&value) };
}
