#[tokio::test]
#[tracked::tracked]
async fn test_outer() {
    tokio::spawn(async {}).await.unwrap();
}

#[tracked::tracked]
#[tokio::test]
async fn test_inner() {
    tokio::spawn(async {}).await.unwrap();
}

fn main() {}
