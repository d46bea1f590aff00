use std::rc::Rc;

#[tracked::tracked]
async fn run_round() {
    let shared = Rc::new(1);
    tokio::spawn(async move {
        drop(shared);
    });
}

fn main() {}
