"""Relation Networks: A simple neural network module for relational reasoning."""
