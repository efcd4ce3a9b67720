DROP TABLE platform.audit_tree_heads;
DROP TABLE platform.audit_leaves;
