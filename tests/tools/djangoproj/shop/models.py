"""The Django conformance app: three models with foreign keys, unique constraints, indexes."""

from __future__ import annotations

from typing import ClassVar

from django.db import models


class Publisher(models.Model):
    name = models.CharField(max_length=80, unique=True)
    founded = models.BigIntegerField(null=True)


class Book(models.Model):
    publisher = models.ForeignKey(Publisher, on_delete=models.CASCADE, related_name="books")
    title = models.CharField(max_length=200, db_index=True)
    isbn = models.CharField(max_length=32, unique=True)
    subtitle = models.CharField(max_length=200, null=True)
    price = models.FloatField(null=True)
    copies = models.BigIntegerField(default=0)
    cover = models.BinaryField(null=True)


class Review(models.Model):
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="reviews")
    stars = models.IntegerField(null=True)
    body = models.TextField()

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["book", "stars"], name="review_book_stars")
        ]
