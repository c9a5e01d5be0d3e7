"""correctness: answers a program can verify, checked by computing them.

Arithmetic, aggregates (sum, product, average, median), percentages, powers and roots, GCD/LCM, primality,
linear equations and substitution, areas and volumes, unit conversions, sorting and alphabetising, counting
words/letters/vowels, and date arithmetic. Each solver only accepts a question it can parse without guessing;
a record is flagged only when none of the answer's numbers agrees with the computed one (allowing for the
answer's own rounding). Machine-generated sets like Alpaca carry many confidently wrong answers of this kind.

One module per solver family, each with its `solve(instruction, input) -> Task | None`; `check` tries them in
order and judges the answer.
"""
