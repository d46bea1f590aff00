#[tracked::tracked]
trait Service {
    async fn serve(&self);
}

fn main() {}
