DROP TABLE market.instruments;
