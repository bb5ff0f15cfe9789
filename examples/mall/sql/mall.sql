-- The mall's tables, as the tutorial creates them in database `mall` (goctl model DDL), applied by the start command
-- (`npm run mall`, or `node dist/src/main.js migrate`) with CREATE TABLE IF NOT EXISTS so it is safe to re-run.
-- One change of this port: `order`.`gid` records the saga that created the order, so that its compensation
-- (order.CreateRevert) cancels that order and not the user's newest one (see README, "Fixed from the original").
-- The barrier table dtm_barrier.barrier comes from @dtx/client (packages/client/sql/barrier.mysql.sql).

CREATE TABLE IF NOT EXISTS `user` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(255) NOT NULL DEFAULT '' COMMENT 'user name',
  `gender` tinyint(3) unsigned NOT NULL DEFAULT '0' COMMENT 'gender',
  `mobile` varchar(255) NOT NULL DEFAULT '' COMMENT 'mobile number',
  `password` varchar(255) NOT NULL DEFAULT '' COMMENT 'password hash',
  `create_time` timestamp NULL DEFAULT CURRENT_TIMESTAMP,
  `update_time` timestamp NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  UNIQUE KEY `idx_mobile_unique` (`mobile`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `product` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(255) NOT NULL DEFAULT '' COMMENT 'product name',
  `desc` varchar(255) NOT NULL DEFAULT '' COMMENT 'description',
  `stock` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'stock',
  `amount` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'price',
  `status` tinyint(3) unsigned NOT NULL DEFAULT '0' COMMENT 'status',
  `create_time` timestamp NULL DEFAULT CURRENT_TIMESTAMP,
  `update_time` timestamp NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `order` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uid` bigint unsigned NOT NULL DEFAULT '0' COMMENT 'user id',
  `pid` bigint unsigned NOT NULL DEFAULT '0' COMMENT 'product id',
  `amount` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'order amount',
  `status` tinyint(3) unsigned NOT NULL DEFAULT '0' COMMENT 'order status: 0 created, 1 paid, 9 cancelled',
  `gid` varchar(128) NULL DEFAULT NULL COMMENT 'the saga that created the order (added by this port)',
  `create_time` timestamp NULL DEFAULT CURRENT_TIMESTAMP,
  `update_time` timestamp NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  KEY `idx_uid` (`uid`),
  KEY `idx_pid` (`pid`),
  UNIQUE KEY `idx_gid_unique` (`gid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `pay` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uid` bigint unsigned NOT NULL DEFAULT '0' COMMENT 'user id',
  `oid` bigint unsigned NOT NULL DEFAULT '0' COMMENT 'order id',
  `amount` int(10) unsigned NOT NULL DEFAULT '0' COMMENT 'amount paid',
  `source` tinyint(3) unsigned NOT NULL DEFAULT '0' COMMENT 'payment method',
  `status` tinyint(3) unsigned NOT NULL DEFAULT '0' COMMENT 'payment status',
  `create_time` timestamp NULL DEFAULT CURRENT_TIMESTAMP,
  `update_time` timestamp NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  KEY `idx_uid` (`uid`),
  KEY `idx_oid` (`oid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
