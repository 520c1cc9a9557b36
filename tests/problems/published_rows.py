"""Rows in each benchmark's published layout (column names, types, encodings as published), and
writers for every file format they come in. The rows are made up: GPQA's authors ask that their
items not be reproduced in plain text, and no test needs a real one."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# HuggingFaceH4/MATH-500 test.jsonl: level an integer, subject a name.
MATH500 = [
    {
        "problem": "What is $\\frac{1}{2} + \\frac{1}{4}$?",
        "solution": "The sum is $\\boxed{\\frac{3}{4}}$.",
        "answer": "\\frac{3}{4}",
        "subject": "Prealgebra",
        "level": 2,
        "unique_id": "test/prealgebra/1.json",
    },
    {
        "problem": "Find $x$ if $2x = 10$.",
        "solution": "Divide by 2: $x = \\boxed{5}$.",
        "answer": "5",
        "subject": "Algebra",
        "level": 1,
        "unique_id": "test/algebra/2.json",
    },
    {
        "problem": "How many ways can 3 books be ordered?",
        "solution": "$3! = \\boxed{6}$.",
        "answer": "6",
        "subject": "Counting & Probability",
        "level": 2,
        "unique_id": "test/counting_and_probability/3.json",
    },
]
# HuggingFaceH4/aime_2024: id, problem, solution, answer (an integer), url, year.
AIME_H4 = [
    {
        "id": 60,
        "problem": "Find the remainder when 2024 is divided by 7.",
        "solution": "...",
        "answer": 1,
        "url": "https://example.org/aime/1",
        "year": "2024",
    },
    {
        "id": 61,
        "problem": "Compute 12 times 12.",
        "solution": "...",
        "answer": 144,
        "url": "https://example.org/aime/2",
        "year": "2024",
    },
]
# Maxwell-Jia/AIME_2024: capitalised columns.
AIME_CAPITALISED = [
    {"ID": "2024-I-1", "Problem": "Compute 3 + 4.", "Solution": "...", "Answer": 7},
    {"ID": "2024-I-2", "Problem": "Compute 9 times 9.", "Solution": "...", "Answer": 81},
]
# opencompass/AIME2025: question and answer only, the answer text.
AIME_QUESTION = [
    {"question": "Compute 10 + 15.", "answer": "25"},
    {"question": "Compute 2^10 modulo 1000.", "answer": "24"},
]
# Idavidrein/gpqa gpqa_diamond.csv: the right answer always in one column, among many others.
GPQA = [
    {
        "Pre-Revision Question": "old",
        "Pre-Revision Correct Answer": "old",
        "Question": "Which gas is inert?",
        "Correct Answer": "Argon",
        "Incorrect Answer 1": "Oxygen",
        "Incorrect Answer 2": "Chlorine",
        "Incorrect Answer 3": "Fluorine",
        "Explanation": "A noble gas.",
        "Subdomain": "Chemistry (general)",
        "Record ID": "rec001",
        "High-level domain": "Chemistry",
    },
    {
        "Pre-Revision Question": "old",
        "Pre-Revision Correct Answer": "old",
        "Question": "What is the SI unit of force?",
        "Correct Answer": "Newton",
        "Incorrect Answer 1": "Joule",
        "Incorrect Answer 2": "A pascal",
        "Incorrect Answer 3": "Watt",
        "Explanation": "F = ma.",
        "Subdomain": "Physics (general)",
        "Record ID": "rec002",
        "High-level domain": "Physics",
    },
]
# cais/mmlu: choices a list, answer the index of the right one (an integer).
MMLU = [
    {
        "question": "What is 2 + 2?",
        "subject": "elementary_mathematics",
        "choices": ["3", "4", "5", "22"],
        "answer": 1,
    },
    {
        "question": "Which is a prime?",
        "subject": "abstract_algebra",
        "choices": ["4", "6", "7", "None"],
        "answer": 2,
    },
]
# Hendrycks' original CSVs: no header; question, four options, the letter.
MMLU_CSV = [
    ["What is 2 + 2?", "3", "4", "5", "22", "B"],
    ["Which is even?", "None", "NA", "8", "nan", "C"],
]
# TIGER-Lab/MMLU-Pro: up to 10 options, the letter and its index, a category.
MMLU_PRO = [
    {
        "question_id": 70,
        "question": "What is 3 times 3?",
        "options": ["6", "9", "12", "3", "33", "0", "1", "27", "18", "90"],
        "answer": "B",
        "answer_index": 1,
        "cot_content": "",
        "category": "math",
        "src": "ori_mmlu-x",
    },
    {
        "question_id": 71,
        "question": "Which organ pumps blood?",
        "options": ["Liver", "Lung", "Heart"],
        "answer": "C",
        "answer_index": 2,
        "cot_content": "",
        "category": "health",
        "src": "stemez-y",
    },
]
# openai/gsm8k: the answer a worked solution ending "#### N".
GSM8K = [
    {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"},
    {"question": "A book costs $1,200 and a pen $34. Total?", "answer": "1200 + 34 = 1234\n#### 1,234"},
]


def write(path: Path, rows: list, header: bool = True) -> Path:
    """``rows`` written as ``path``'s name says: .parquet, .csv, .json, .jsonl or .jsonl.gz."""
    name = path.name
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif name.endswith(".csv"):
        with path.open("w", newline="", encoding="utf-8") as file:
            if isinstance(rows[0], dict):
                writer = csv.DictWriter(file, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            else:
                csv.writer(file).writerows(rows)
    elif name.endswith(".jsonl.gz"):
        path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    elif name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif name.endswith(".json"):
        path.write_text(json.dumps(rows, indent=1))
    else:
        raise ValueError(path)
    return path
