"""Explicit labels people can see and hear (GB 45438 Chapter 5), and the checker that finds them."""
