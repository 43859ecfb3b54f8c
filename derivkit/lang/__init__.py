"""The expression language: IR, shapes, the op table, the parser, printing and recipes."""
