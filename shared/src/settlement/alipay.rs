pub struct AlipayRoyalty;
