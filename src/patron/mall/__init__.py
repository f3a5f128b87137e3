"""The points mall: gifts, stock, redemptions, flash sales and lotteries (docs/mall.md)."""
