"""Tests of explicit labels (text, image, audio, video) and the checker."""
