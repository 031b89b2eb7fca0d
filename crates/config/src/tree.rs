//! A read-only view over toml_edit's tree that treats `[table]`, `{ inline = "table" }` and
//! dotted keys alike and keeps every span, so validation can point at each offending value.

use std::ops::Range;

use toml_edit::{ArrayOfTables, InlineTable, Item, Table, Value};

pub(crate) type Span = Range<usize>;

/// A table however it was written.
#[derive(Clone, Copy)]
pub(crate) enum TableRef<'a> {
    Table(&'a Table),
    Inline(&'a InlineTable),
}

/// A value in the tree: a plain value (which may be an inline table or an array), a `[table]`,
/// or an `[[array.of.tables]]`.
#[derive(Clone, Copy)]
pub(crate) enum Node<'a> {
    Value(&'a Value),
    Table(&'a Table),
    TableArray(&'a ArrayOfTables),
}

/// One `key = value` of a table, with the key's own position.
#[derive(Clone)]
pub(crate) struct Field<'a> {
    pub(crate) key: &'a str,
    pub(crate) key_span: Option<Span>,
    pub(crate) node: Node<'a>,
}

impl<'a> TableRef<'a> {
    /// The fields in document order.
    pub(crate) fn fields(self) -> Vec<Field<'a>> {
        match self {
            TableRef::Table(t) => t
                .iter()
                .filter_map(|(k, item)| {
                    let node = match item {
                        Item::Value(v) => Node::Value(v),
                        Item::Table(t) => Node::Table(t),
                        Item::ArrayOfTables(a) => Node::TableArray(a),
                        Item::None => return None,
                    };
                    Some(Field {
                        key: k,
                        key_span: t.key(k).and_then(|k| k.span()),
                        node,
                    })
                })
                .collect(),
            TableRef::Inline(t) => t
                .iter()
                .map(|(k, v)| Field {
                    key: k,
                    key_span: t.key(k).and_then(|k| k.span()),
                    node: Node::Value(v),
                })
                .collect(),
        }
    }

    /// Where the table starts: its `[header]` or opening `{`. Tables that only exist through
    /// dotted keys (`authentication.auth_type = ...`) or deeper headers have no span of their
    /// own; callers fall back to the key.
    pub(crate) fn span(self) -> Option<Span> {
        match self {
            TableRef::Table(t) => t.span(),
            TableRef::Inline(t) => t.span(),
        }
    }
}

impl<'a> Node<'a> {
    pub(crate) fn span(self) -> Option<Span> {
        match self {
            Node::Value(v) => v.span(),
            Node::Table(t) => t.span(),
            Node::TableArray(a) => a.iter().next().and_then(Table::span).or_else(|| a.span()),
        }
    }

    /// The table this node is, if it is one (`[x]`, dotted or inline).
    pub(crate) fn as_table(self) -> Option<TableRef<'a>> {
        match self {
            Node::Table(t) => Some(TableRef::Table(t)),
            Node::Value(Value::InlineTable(t)) => Some(TableRef::Inline(t)),
            _ => None,
        }
    }

    /// "a string", "an integer", ... for "expected X, found Y" messages.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Node::Value(v) => value_type_name(v),
            Node::Table(_) => "a table",
            Node::TableArray(_) => "an array of tables",
        }
    }
}

pub(crate) fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}

impl Field<'_> {
    /// Where to point for this field's value: the value itself, else the key.
    pub(crate) fn span(&self) -> Option<Span> {
        self.node.span().or_else(|| self.key_span.clone())
    }
}
