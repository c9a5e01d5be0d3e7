"""`make demo`: curate a text-to-SQL dataset the project generates itself, with known defects injected.

The generator builds a small shop database in SQLite, writes questions whose gold SQL runs on it, holds
out an evaluation split, and then spoils the training split on purpose: exact and paraphrased duplicates,
SQL in inconsistent case and spacing, empty answers, placeholder inputs, and evaluation examples copied
into training. `defects.json` records where each defect sits and which step must catch it, so the demo
can check the curation rather than just show it.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lmtailor.io import read_jsonl, write_jsonl
from lmtailor.minhash import Shingler
from lmtailor.steps.decontaminate import ngram_keys
from lmtailor.steps.normalize import canonical_sql

SCHEMA = (
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, "
    "city TEXT NOT NULL, country TEXT NOT NULL, signup_date TEXT NOT NULL);\n"
    "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, category TEXT NOT NULL, "
    "price REAL NOT NULL, stock INTEGER NOT NULL);\n"
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), "
    "order_date TEXT NOT NULL, status TEXT NOT NULL);\n"
    "CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), "
    "product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL, unit_price REAL NOT "
    "NULL);"
)

CITIES = {"Paris": "France", "Lyon": "France", "Berlin": "Germany", "Munich": "Germany", "Madrid": "Spain",
          "Seville": "Spain", "Rome": "Italy", "Milan": "Italy", "Lisbon": "Portugal", "Porto": "Portugal",
          "Dublin": "Ireland", "Vienna": "Austria"}
FIRST = ["Alice", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira",
         "Lars", "Maya", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Samir", "Tessa", "Umberto", "Vera",
         "Wendell", "Ximena", "Yusuf", "Zara", "Arthur", "Beatriz", "Conor", "Daphne", "Emil", "Fiona",
         "Gustavo", "Helga", "Ivan", "Julia", "Kenji", "Leonie", "Marco", "Nora", "Otto", "Paloma", "Rafael",
         "Sofia", "Tobias", "Ursula", "Viktor", "Wanda", "Yannick", "Zoltan"]
LAST = ["Martin", "Keller", "Dubois", "Petrov", "Rossi", "Haddad", "Lindqvist", "Moreau", "Silva", "Becker",
        "Tanaka", "Nilsen", "Okafor", "Sharma", "Fischer", "Iyer", "Laurent", "Garcia", "Mansour", "Visser",
        "Bianchi", "Novak", "Brooks", "Herrera", "Demir", "Khan", "Walsh", "Costa", "Murphy", "Andersen",
        "Weber", "Campbell", "Ortega", "Berg", "Popescu", "Conti", "Sato", "Wolff", "Ferrari", "Quinn",
        "Braun", "Navarro", "Pereira", "Marino", "Schulz", "Horvat", "Kowalski", "Lambert", "Fontaine",
        "Eriksen"]
PRODUCTS = {
    "Books": ["Atlas of Rivers", "Pocket Cookbook", "Mystery Anthology", "Poetry Collection",
              "Travel Guide to Norway", "Illustrated Dictionary"],
    "Electronics": ["Wireless Earbuds", "Portable Charger", "Bluetooth Speaker", "Smart Thermostat",
                    "Action Camera", "Mechanical Keyboard", "Ebook Reader"],
    "Garden": ["Watering Can", "Pruning Shears", "Bird Feeder", "Compost Bin", "Hose Reel",
               "Seed Starter Kit"],
    "Toys": ["Wooden Train Set", "Puzzle Cube", "Stunt Kite", "Plush Bear", "Building Blocks", "Toy Drone"],
    "Kitchen": ["Copper Kettle", "Chef Knife", "Cast Iron Skillet", "Pepper Mill", "Espresso Maker",
                "Salad Spinner", "Bread Tin"],
    "Sports": ["Yoga Mat", "Tennis Racket", "Climbing Rope", "Running Shoes", "Cycling Helmet",
               "Dumbbell Pair"],
    "Clothing": ["Wool Scarf", "Rain Jacket", "Linen Shirt", "Denim Jeans", "Leather Gloves", "Sun Hat"],
    "Beauty": ["Lavender Soap", "Face Serum", "Hair Dryer", "Lip Balm", "Bath Salts", "Nail Kit"],
}
RECIPE = resources.files("lmtailor") / "recipes" / "demo.yaml"
STATUSES = ["pending", "shipped", "delivered", "cancelled", "returned"]
YEARS = ["2022", "2023", "2024"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


# ---------------------------------------------------------------- the database


@dataclass
class Shop:
    """The rows of the demo database, kept in Python so templates can pick values that exist."""

    customers: list[tuple] = field(default_factory=list)
    products: list[tuple] = field(default_factory=list)
    orders: list[tuple] = field(default_factory=list)
    items: list[tuple] = field(default_factory=list)


def build_shop(rng: random.Random) -> Shop:
    """50 customers, 50 products, 80 orders and their items, seeded.

    Every city gets at least two customers; 8 customers never order and 8 products never sell, so the
    "never ordered" questions have answers too.
    """
    shop = Shop()
    cities = list(CITIES)
    for i, (first, last) in enumerate(zip(FIRST, rng.sample(LAST, len(LAST)), strict=True), 1):
        city = cities[(i - 1) % len(cities)] if i <= 2 * len(cities) else rng.choice(cities)
        signup = f"{rng.choice(YEARS)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        email = f"{first}.{last}@example.com".lower()
        shop.customers.append((i, f"{first} {last}", email, city, CITIES[city], signup))
    pid = 0
    for category, names in PRODUCTS.items():
        for name in names:
            pid += 1
            shop.products.append((pid, name, category, round(rng.uniform(4, 180), 2), rng.randint(0, 60)))
    buyers = rng.sample(range(1, len(shop.customers) + 1), 42)
    sold = rng.sample(shop.products, 42)
    for oid in range(1, 81):
        date = f"{rng.choice(YEARS)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        status = rng.choices(STATUSES, weights=[2, 3, 6, 1, 1])[0]
        buyer = buyers[oid - 1] if oid <= len(buyers) else rng.choice(buyers)  # every buyer has an order
        shop.orders.append((oid, buyer, date, status))
        for product in rng.sample(sold, rng.randint(1, 3)):
            shop.items.append((len(shop.items) + 1, oid, product[0], rng.randint(1, 5), product[3]))
    return shop


def write_db(shop: Shop, path: Path) -> sqlite3.Connection:
    """A fresh SQLite file with foreign keys enforced, so the rows must be consistent to load."""
    if path.exists():
        path.unlink()
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys = ON")
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", shop.customers)
    db.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?)", shop.products)
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", shop.orders)
    db.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", shop.items)
    db.commit()
    return db


# ---------------------------------------------------------------- question templates

_GROUP = re.compile(r"\[([^\]]*)\]")
Params = Callable[[Shop, random.Random], list[dict[str, Any]]]


@dataclass(frozen=True)
class Template:
    """One kind of question: phrasings with synonym groups `[a|b|c]`, the gold SQL, and its parameters.

    Every parameter set names an entity (a city, a customer, a product...): questions that differ only in
    a number or a status word are near-identical to a sentence embedding and would rightly be flagged as
    duplicates. Synonym groups give each clean question its own wording, and give the injected
    paraphrases a wording that keeps the meaning while changing the words.
    """

    name: str
    phrasings: tuple[str, ...]
    sql: str
    params: Params

    def groups(self, phrasing: int) -> list[list[str]]:
        return [g.split("|") for g in _GROUP.findall(self.phrasings[phrasing])]

    def render(self, phrasing: int, choices: tuple[int, ...], params: dict[str, Any]) -> str:
        options = iter(self.groups(phrasing))
        picks = iter(choices)

        def pick(_: re.Match[str]) -> str:
            group = next(options)
            return group[next(picks) % len(group)]

        return _GROUP.sub(pick, self.phrasings[phrasing]).format(**params)


def _each(key: str, values: Callable[[Shop], list[Any]], **extra: list[Any]) -> Params:
    """One parameter set per entity, with a random value for each extra parameter."""
    def params(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
        return [{key: v, **{k: rng.choice(opts) for k, opts in extra.items()}} for v in values(shop)]
    return params


def _customer_status(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
    names = {c[0]: c[1] for c in shop.customers}
    statuses: dict[int, list[str]] = {}
    for _, cid, _, status in shop.orders:
        statuses.setdefault(cid, []).append(status)
    return [{"customer": names[cid], "status": rng.choice(s)} for cid, s in statuses.items()]


def _city_month(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
    """A month in which the city's customers did order, so the count is not zero."""
    city = {c[0]: c[3] for c in shop.customers}
    dates: dict[str, list[str]] = {}
    for _, cid, date, _ in shop.orders:
        dates.setdefault(city[cid], []).append(date)
    out = []
    for c, ds in dates.items():
        year, mm, _ = rng.choice(ds).split("-")
        out.append({"city": c, "year": year, "mm": mm, "month": MONTHS[int(mm) - 1]})
    return out


CITY = _each("city", lambda shop: list(CITIES))
COUNTRY = _each("country", lambda shop: list(dict.fromkeys(CITIES.values())))
CATEGORY = _each("category", lambda shop: list(PRODUCTS))
CUSTOMER = _each("customer", lambda shop: [c[1] for c in shop.customers])
PRODUCT = _each("product", lambda shop: [p[1] for p in shop.products])
WHO = "[customers|clients|shoppers]"

TEMPLATES = [
    Template("customers_in_city", (
        "[List|Show|Give me] the names and [email addresses|emails|e-mail addresses] of [every|each] "
        "[customer|client|shopper] who [lives|resides|is based] in {city}, [ordered by name|sorted by "
        "name|in "
        "alphabetical order].",
        f"Which {WHO} [are based|live|reside] in {{city}}? [Give|Return|Show] [each one's|their] name and "
        "[email|email address], [sorted|ordered|arranged] by name.",
        "[Show|Display|Print] the name and [email|e-mail] of [all|the] [customers|clients] [located|living|"
        "residing] in {city}, [in alphabetical order of name|in name order|ordered by their names]."),
        "select name, email from customers where city = '{city}' order by name", CITY),
    Template("count_customers_country", (
        f"How many {WHO} in the [shop|store] [database|records] [come from|are from|live in] {{country}}?",
        "[Count|Tally] the [registered|signed-up] [customers|clients] whose country is "
        "[recorded|stored|listed] "
        "as {country}.",
        "What is the [number|count|total number] of [customers|clients] [living|residing|located] in "
        "{country} "
        "according to the [customers table|customer records]?"),
        "select count(*) from customers where country = '{country}'", COUNTRY),
    Template("signups_since", (
        "Which [customers|clients] from {city} [signed up|registered|joined] on or after {date}? "
        "[Return|Give|Show] their [names|full names] and [signup|registration] dates.",
        f"[Find|Get|Identify] the {{city}} {WHO} who [created their account|opened an account|registered] no "
        "earlier than {date}, [with|along with|together with] the date they joined.",
        "[Give|List|Show] the [names|full names] and [signup|registration] dates of [customers|clients] in "
        "{city} "
        "whose [signup|registration] date is {date} or [later|after]."),
        "select name, signup_date from customers where city = '{city}' and signup_date >= '{date}' "
        "order by signup_date", _each("city", lambda shop: list(CITIES), date=["2022-01-01", "2022-06-01"])),
    Template("customer_email", (
        "What is the [email address|e-mail address|email] [on file|we have|stored] for the [customer|client] "
        "[named|called] {customer}?",
        "[Look up|Find|Fetch] the [contact email|email address] we [have stored|keep|hold] for {customer} in "
        "the "
        "[customers table|customer records].",
        "[Retrieve|Get|Return] the email of the [shopper|customer|client] called {customer} from the "
        "[customer records|customers table]."),
        "select email from customers where name = '{customer}'", CUSTOMER),
    Template("customer_location", (
        "In [which|what] city and country does the [customer|client] {customer} [live|reside], according to "
        "our "
        "[records|data]?",
        "Where is {customer} [located|based]? [Return|Give|Show] the [city|town] and the country from the "
        "[customer record|customers table].",
        "[Tell me|Give me|Show me] the [home city|city] and country [registered|recorded|stored] for the "
        "[customer|client] {customer}."),
        "select city, country from customers where name = '{customer}'", CUSTOMER),
    Template("cities_in_country", (
        "Which cities in {country} have [customers|clients], and how many [customers|clients] does [each of "
        "those cities|each city] have?",
        "For [every|each] city in {country}, [count|tally] how many [customers|clients] live there and "
        "[show|list|give] the city [with|next to|alongside] its count.",
        "[Break down|Split|Group] the [customers|clients] from {country} by city, [giving|showing|with] the "
        "number of [customers|clients] per city."),
        "select city, count(*) as customers from customers where country = '{country}' group by city "
        "order by customers desc", COUNTRY),
    Template("signups_country_year", (
        "How many [customers|clients] from {country} [created their account|signed up|registered] [at some "
        "point "
        "during|at any time in|sometime in] {year}?",
        "[Count|Tally] the [customers|clients] whose country is {country} and whose [signup|registration] "
        "date "
        "falls in {year}.",
        "What number of {country} [customers|clients] [joined|signed up with|registered with] the "
        "[shop|store] "
        "in {year}, based on their [signup|registration] date?"),
        "select count(*) from customers where country = '{country}' and strftime('%Y', signup_date) = "
        "'{year}'",
        _each("country", lambda shop: list(dict.fromkeys(CITIES.values())), year=YEARS)),
    Template("category_under_price", (
        "Which {category} products [cost less than|are priced under|sell for less than] {price} dollars? "
        "[List|Show|Give] their names and prices [from cheapest up|cheapest first|in ascending order of "
        "price].",
        "[Show|List|Display] [every|each] product in the {category} category [priced under|costing less than|"
        "cheaper than] {price}, with its price, [cheapest first|lowest price first].",
        "[Find|Get|Identify] the {category} [items|products|articles] that are [cheaper than|priced "
        "under|under] "
        "{price} and [give|return|show] their names and prices [in ascending order|from low to high|sorted "
        "by "
        "price]."),
        "select name, price from products where category = '{category}' and price < {price} order by price",
        _each("category", lambda shop: list(PRODUCTS), price=[60, 80, 100, 120])),
    Template("most_expensive_in_category", (
        "What are the {n} most [expensive|costly|pricey] [products|items] in the {category} "
        "[category|range], "
        "[with|along with|together with] their prices?",
        "[Name|List|Show] the top {n} {category} [products|items] by price, [most expensive first|priciest "
        "first|in descending order], and [show|give|include] [each price|their prices].",
        "[Give|Return|Show] the {n} priciest [items|products|articles] in the {category} [category|range] "
        "[together with|along with|and] what they cost."),
        "select name, price from products where category = '{category}' order by price desc limit {n}",
        _each("category", lambda shop: list(PRODUCTS), n=[2, 3])),
    Template("low_stock", (
        "[Find|Show|List] the {category} [products|items] with fewer than {stock} units [left|remaining] in "
        "stock, [showing|including|with] the stock level.",
        "Which products in the {category} category are running [low|short], with fewer than {stock} units "
        "[in stock|on hand|available]?",
        "[List|Give|Show] {category} [products|items] that have under {stock} units [in stock|on hand|"
        "available], [along with|together with|and] how many units [remain|are left]."),
        "select name, stock from products where category = '{category}' and stock < {stock} order by stock",
        _each("category", lambda shop: list(PRODUCTS), stock=[20, 30, 40])),
    Template("product_price_stock", (
        "[How much does|What does] the [product|item] [called|named] {product} cost, and how many units "
        "[of it are|are still|are currently] [in stock|available|on hand]?",
        "What are the [current|present] price and [the stock level|the number of units in stock|the stock "
        "count] of the {product} in the [products table|catalogue]?",
        "[Give me|Tell me|Show me] the price of {product} [together with|along with|and] the number of units "
        "we "
        "[still have|have left|keep] [in stock|on the shelf]."),
        "select price, stock from products where name = '{product}'", PRODUCT),
    Template("average_price_category", (
        "What is the [average|mean] price of the [products|items] in the {category} [category|range], "
        "[rounded to two decimals|to two decimal places|rounded to 2 decimals]?",
        "[Compute|Calculate|Work out] the [mean|average] [product|item] price for the {category} "
        "[category|range], [rounded to 2 decimal places|to two decimals|rounded to two decimals].",
        "On average, how much does [a product|an item] from the {category} [category|range] cost? [Round to "
        "two "
        "decimals|Round it to 2 decimals|Give it to two decimal places]."),
        "select round(avg(price), 2) from products where category = '{category}'", CATEGORY),
    Template("products_name_word", (
        "Which [products|items] have the word {word} [somewhere|anywhere] in their name? [Show|Give|List] "
        "their "
        "names and [categories|product categories].",
        "[Search|Scan] the product [catalogue|catalog] for names [containing|that contain|including] {word} "
        "and "
        "[return|give|show] each name [with|along with|next to] its category.",
        "[List|Give|Show] every [product|item] whose name [includes|contains] the [text|word] {word}, "
        "[together with|along with|and] the category it [belongs to|is in]."),
        "select name, category from products where name like '%{word}%'",
        _each("word", lambda shop: list(dict.fromkeys(p[1].split()[-1] for p in shop.products)))),
    Template("stock_value_category", (
        "What is the [total|combined] value of the {category} [stock|inventory], [counting|taking] price "
        "times "
        "units in stock for [each|every] [product|item]?",
        "[Calculate|Compute|Work out] how much the {category} [inventory|stock] is worth by [summing|adding "
        "up] "
        "price [multiplied by|times] [stock|units in stock].",
        "[Sum up|Add up|Total] price times stock over all {category} [products|items] to [get|obtain|find] "
        "the "
        "value of that [inventory|stock]."),
        "select round(sum(price * stock), 2) from products where category = '{category}'", CATEGORY),
    Template("orders_of_customer", (
        "[List|Show|Give] the [id, date and status|order id, date and status|id, order date and status] of "
        "[every|each] order [placed|made] by {customer}, [newest order first|most recent first|latest "
        "first].",
        "[Show|List|Display] all orders that {customer} has [made|placed], with [order id, order date and "
        "status|the id, date and status of each], [most recent first|newest first|sorted newest first].",
        "Which orders [belong to|were placed by] the [customer|client] {customer}? [Give|Return|Show] [id, "
        "date "
        "and status|the order id, date and status] sorted from [newest to oldest|latest to earliest]."),
        "select o.id, o.order_date, o.status from orders as o join customers as c on c.id = o.customer_id "
        "where c.name = '{customer}' order by o.order_date desc", CUSTOMER),
    Template("orders_status_customer", (
        "How many of the orders [placed|made] by {customer} [currently have|are in] the status {status}?",
        "[Count|Tally] the [orders|purchases] of the [customer|client] {customer} [whose status is|that are "
        "marked|that have status] {status}.",
        "What is the [number|count] of {status} orders that [belong to|were placed by|come from] "
        "{customer}?"),
        "select count(*) from orders as o join customers as c on c.id = o.customer_id "
        "where c.name = '{customer}' and o.status = '{status}'", _customer_status),
    Template("customer_total_spent", (
        "How much [money|cash] has {customer} spent [in total|altogether|overall] across all [of "
        "their|their] "
        "orders?",
        "[Compute|Calculate|Work out] the [total amount|sum of money] {customer} has [paid|spent], "
        "[summing|adding "
        "up] quantity times unit price over [every|each] [order item|item ordered].",
        "What is the lifetime [spending|spend] of the [customer|client] {customer}, [based on|counting] all "
        "the "
        "items [they ordered|they bought|in their orders]?"),
        "select sum(oi.quantity * oi.unit_price) from order_items as oi join orders as o on o.id = "
        "oi.order_id "
        "join customers as c on c.id = o.customer_id where c.name = '{customer}'", CUSTOMER),
    Template("last_order_date", (
        "When did {customer} [place|make] their [most recent|latest|last] order? [Return|Give|Show] [that "
        "date|the order date|the date].",
        "[Find|Get|Look up] the date of the [last|most recent|latest] [purchase|order] [made|placed] by the "
        "[customer|client] {customer}.",
        "What is the [newest|latest|most recent] order date [recorded|stored|on record] for {customer} in "
        "the "
        "[orders table|order records]?"),
        "select max(o.order_date) from orders as o join customers as c on c.id = o.customer_id "
        "where c.name = '{customer}'", CUSTOMER),
    Template("customers_with_status_country", (
        "Which [customers|clients] from {country} have [at least one order|one or more orders|any order] "
        "[whose status is|with status|marked] {status}? [List|Give|Show] each name [only once|just once|a "
        "single "
        "time].",
        "[Give|Return|List] the distinct names of {country} [customers|clients] who [own|have|placed] an "
        "order "
        "[currently marked|with the status|in status] {status}.",
        "[Find|Identify] every [customer|client] in {country} with [one or more|any] {status} orders, "
        "[without "
        "repeating names|listing each name once|with no repeated names]."),
        "select distinct c.name from customers as c join orders as o on o.customer_id = c.id "
        "where c.country = '{country}' and o.status = '{status}' order by c.name",
        _each("country", lambda shop: list(dict.fromkeys(CITIES.values())), status=["shipped", "delivered"])),
    Template("orders_in_month_city", (
        "How many orders [were placed|came in] from {city} [customers|clients] in {month} {year}, [counting "
        "every "
        "order regardless of status|whatever their status|of any status]?",
        "[Count|Tally] [all the|the] orders by [customers|clients] [living|residing|based] in {city} whose "
        "[order date|date] falls [within|in] {month} of {year}.",
        "What was the [number|count] of orders [made|placed] by {city} [customers|clients] during {month} "
        "{year} "
        "[according to the orders table|in the orders table|as recorded]?"),
        "select count(*) from orders as o join customers as c on c.id = o.customer_id where c.city = "
        "'{city}' "
        "and strftime('%Y-%m', o.order_date) = '{year}-{mm}'", _city_month),
    Template("buyers_of_product", (
        "Which [customers|clients] have [bought|purchased|ordered] the {product}? [Give|Return|List] their "
        "names "
        "[without duplicates|once each|with no repeats].",
        "[List|Show|Give] the distinct [customers|clients] who [ordered|bought] [at least one|a] {product}, "
        "[sorted by name|in name order|alphabetically].",
        "Who [purchased|bought|ordered] the [product|item] {product}? [Show|Give|List] each "
        "[buyer's|purchaser's] "
        "name once, [alphabetically|in alphabetical order|sorted by name]."),
        "select distinct c.name from customers as c join orders as o on o.customer_id = c.id join "
        "order_items "
        "as oi on oi.order_id = o.id join products as p on p.id = oi.product_id where p.name = '{product}' "
        "order by c.name", PRODUCT),
    Template("units_sold_product", (
        "How many [units|pieces|items] of the {product} have been [sold|ordered] [in "
        "total|altogether|overall] "
        "across all [orders|purchases]?",
        "What is the [total|overall] quantity of {product} [ordered|bought] by [customers|clients], summed "
        "over "
        "[every order line|each order item|all line items]?",
        "[Add up|Sum|Total] the quantities of {product} in [all order items|every order line|all order "
        "lines] to "
        "[get|find|obtain] the number of units [sold|purchased]."),
        "select sum(oi.quantity) from order_items as oi join products as p on p.id = oi.product_id "
        "where p.name = '{product}'", PRODUCT),
    Template("revenue_category_year", (
        "What was the [total revenue|total income|overall revenue] from {category} [products|items] in "
        "{year}, "
        "[using|computed as|counting] quantity times unit price?",
        "[Compute|Calculate|Work out] the {category} [sales revenue|revenue|income] for orders [dated "
        "in|placed "
        "in|from] {year}, as quantity [multiplied by|times] unit price.",
        "How much [money|revenue] did {category} [products|items] [bring in|generate|earn] during {year}? "
        "[Sum|Add up|Total] quantity times unit price."),
        "select sum(oi.quantity * oi.unit_price) from order_items as oi join orders as o on o.id = "
        "oi.order_id "
        "join products as p on p.id = oi.product_id where p.category = '{category}' "
        "and strftime('%Y', o.order_date) = '{year}'",
        _each("category", lambda shop: list(PRODUCTS), year=YEARS)),
    Template("city_buyers_category", (
        "Which [customers|clients] from {city} have [ordered|bought|purchased] [something|anything|an item] "
        "from "
        "the {category} [category|range]?",
        "[List|Show|Give] the {city} [customers|clients] who [bought|ordered] at least one {category} "
        "[product|item], [each name once|without repeats|listing each once].",
        "[Find|Identify] [shoppers|customers|clients] [living|residing|based] in {city} with an order that "
        "[contains|includes] [a|some] {category} [item|product]."),
        "select distinct c.name from customers as c join orders as o on o.customer_id = c.id join "
        "order_items "
        "as oi on oi.order_id = o.id join products as p on p.id = oi.product_id where c.city = '{city}' "
        "and p.category = '{category}'", _each("city", lambda shop: list(CITIES), category=list(PRODUCTS))),
    Template("top_spenders_country", (
        "Who are the {n} [biggest|largest|top] spenders among [customers|clients] from {country}, and how "
        "much "
        "did [each|each of them|each one] spend?",
        "[Rank|Order|Sort] the [customers|clients] [living|residing|based] in {country} by [total "
        "spending|how "
        "much they spent] and [return|give|show] the top {n} [with their totals|with the amounts|along with "
        "their totals].",
        "[Give|Return|List] the {n} [customers|clients] from {country} who spent the most [money|in total], "
        "[along with|together with|and] the amount [spent|each spent]."),
        "select c.name, sum(oi.quantity * oi.unit_price) as spent from customers as c join orders as o "
        "on o.customer_id = c.id join order_items as oi on oi.order_id = o.id where c.country = '{country}' "
        "group by c.id order by spent desc limit {n}",
        _each("country", lambda shop: list(dict.fromkeys(CITIES.values())), n=[2, 3])),
    Template("avg_order_value_country", (
        "What is the [average|mean] order value for [customers|clients] [living|residing|based] in "
        "{country}, "
        "[where an order's value is|taking an order's value as|with an order's value being] the [sum|total] "
        "of "
        "its [items|line items]?",
        "[Compute|Calculate|Work out] the [mean|average] total per order for orders [placed|made] by "
        "[customers|clients] [from|in] {country}.",
        "On average, how much is [an order|a single order|one order] worth when the [customer|client|buyer] "
        "[comes from|is from|lives in] {country}?"),
        "select avg(total) from (select o.id, sum(oi.quantity * oi.unit_price) as total from orders as o "
        "join customers as c on c.id = o.customer_id join order_items as oi on oi.order_id = o.id "
        "where c.country = '{country}' group by o.id)", COUNTRY),
    Template("products_bought_in_city", (
        "Which distinct [products|items] were [bought|ordered|purchased] by [customers|clients] who "
        "[live|reside] "
        "in {city}? [Sort|Order|List] the product names [alphabetically|in order|from A to Z].",
        "[List|Show|Give] [every|each] [product|item] that at least one [customer|client] from {city} has "
        "[ordered|bought], [alphabetically|in alphabetical order|sorted by name].",
        "What [products|items] have [shoppers|customers|clients] [based|living] in {city} "
        "[purchased|bought]? "
        "[Give|List|Show] each [product name|name] once."),
        "select distinct p.name from products as p join order_items as oi on oi.product_id = p.id "
        "join orders as o on o.id = oi.order_id join customers as c on c.id = o.customer_id "
        "where c.city = '{city}' order by p.name", CITY),
    Template("never_ordered_category", (
        "Which {category} [products|items] have never been [ordered|bought|purchased] by [anyone|any "
        "customer|a "
        "single customer]?",
        "[List|Show|Give] the [products|items] in the {category} [category|range] that [do not appear|never "
        "appear|are absent] in any [order item|order line|order].",
        "[Find|Identify] {category} [items|products] with [zero|no] sales, [meaning|that is,|i.e.] no order "
        "has "
        "[ever included|ever contained] them."),
        "select name from products where category = '{category}' and id not in "
        "(select product_id from order_items)", CATEGORY),
    Template("orders_by_status_country", (
        "[Break down|Split up|Divide] the orders of [customers|clients] from {country} by status, with [a "
        "count|the number of orders] for [each status|every status].",
        "For [customers|clients] [in|from|living in] {country}, how many orders are there [in each|for "
        "each|per] "
        "[order status|status]?",
        "[Group|Bucket] the orders [placed|made] by {country} [customers|clients] by their status and "
        "[count|tally] the orders in [every|each] group."),
        "select o.status, count(*) from orders as o join customers as c on c.id = o.customer_id "
        "where c.country = '{country}' group by o.status", COUNTRY),
    Template("best_seller_category", (
        "Which [product|item] in the {category} [category|range] has sold the most [units|pieces], and how "
        "many "
        "[units|pieces] was that?",
        "[Find|Identify] the [best-selling|top-selling] {category} [product|item] by [total quantity "
        "ordered|units ordered], [with|along with|and] the quantity.",
        "What is the [top|best-selling|most popular] {category} [item|product] [measured|ranked] by units "
        "sold? "
        "[Return|Give|Show] its name and the [units|unit count|number of units]."),
        "select p.name, sum(oi.quantity) as units from products as p join order_items as oi "
        "on oi.product_id = p.id where p.category = '{category}' group by p.id order by units desc limit 1",
        CATEGORY),
    Template("customers_without_orders", (
        "Which [customers|clients] in {city} have never [placed|made] [a single order|any order|one order] "
        "with "
        "the [shop|store]?",
        "[List|Show|Give] the {city} [customers|clients] who have [no orders at all|not a single order|zero "
        "orders] in the [orders table|order records].",
        "[Find|Identify] [shoppers|customers|clients] from {city} that [signed up|registered] but never "
        "[bought|ordered|purchased] anything."),
        "select name from customers where city = '{city}' and id not in (select customer_id from "
        "orders)", CITY),
    Template("orders_count_customer_year", (
        "How many orders did {customer} [place|make] [during|in] {year}, [whatever their status|of any "
        "status|regardless of status]?",
        "[Count|Tally] the orders [made|placed] by the [customer|client] {customer} with an order date in "
        "{year}.",
        "In {year}, how many orders [were placed|were made] by {customer}, [counting|including] every "
        "status?"),
        "select count(*) from orders as o join customers as c on c.id = o.customer_id "
        "where c.name = '{customer}' and strftime('%Y', o.order_date) = '{year}'",
        _each("customer", lambda shop: [c[1] for c in shop.customers], year=YEARS)),
    Template("largest_order_customer", (
        "What was the [largest|biggest] single order [placed|made] by {customer}, [measured|judged] by its "
        "total "
        "value?",
        "[Find|Identify] the [id and value|order id and total] of the most [expensive|valuable] order "
        "{customer} "
        "has [made|placed].",
        "Which order of {customer} is worth the most? [Return|Give|Show] the [order id|id] and its "
        "[total|total "
        "value]."),
        "select o.id, sum(oi.quantity * oi.unit_price) as total from orders as o join customers as c "
        "on c.id = o.customer_id join order_items as oi on oi.order_id = o.id where c.name = '{customer}' "
        "group by o.id order by total desc limit 1", CUSTOMER),
    Template("category_of_product", (
        "[Which|What] category does the [product|item] {product} [belong to|fall under] in our [catalogue|"
        "catalog]?",
        "[Tell me|Show me|Give me] the [product category|category] that {product} is [listed|filed|sold] "
        "under.",
        "What category is {product} [filed in|listed in|part of], according to the [products table|product "
        "records]?"),
        "select category from products where name = '{product}'", PRODUCT),
    Template("distinct_buyers_category", (
        "How many [different|distinct] [customers|clients] have [bought|ordered] [at least one "
        "product|something|"
        "anything] from the {category} [category|range]?",
        "[Count|Tally] the [distinct|unique] [shoppers|customers|buyers] who [ordered|bought] any {category} "
        "[item|product].",
        "What number of [unique|distinct] [customers|clients] [purchased|bought] something in the {category} "
        "[category|range]?"),
        "select count(distinct o.customer_id) from orders as o join order_items as oi on oi.order_id = o.id "
        "join products as p on p.id = oi.product_id where p.category = '{category}'", CATEGORY),
    Template("revenue_city", (
        "What is the [total revenue|overall revenue|total income] [generated|brought in] by "
        "[customers|clients] "
        "who [live|reside] in {city}, [over all their orders|across all their orders|summed over their "
        "orders]?",
        "[Sum|Add up|Total] the value of [every|each] [order item|item] bought by {city} [customers|clients] "
        "to "
        "[get|find] the [revenue|income] from that city.",
        "How much have [shoppers|customers|clients] [based|living] in {city} spent [altogether|in "
        "total|overall], "
        "[as|computed as|counting] quantity times unit price?"),
        "select sum(oi.quantity * oi.unit_price) from order_items as oi join orders as o on o.id = "
        "oi.order_id "
        "join customers as c on c.id = o.customer_id where c.city = '{city}'", CITY),
    Template("status_orders_city", (
        "Which orders from [customers|clients] in {city} are [still|currently] in status {status}? "
        "[Show|Give] order id and customer name.",
        "[List|Show|Give] the {status} orders [placed|made] by [shoppers|customers|clients] from {city}, "
        "with the "
        "[order id|id] and [who placed it|the customer's name|the buyer's name].",
        "[Find|Identify] [every|each] order with status {status} whose [customer|buyer] [lives|resides] in "
        "{city}; [give|return|show] [id and customer name|the id and the customer's name]."),
        "select o.id, c.name from orders as o join customers as c on c.id = o.customer_id "
        "where c.city = '{city}' and o.status = '{status}'",
        _each("city", lambda shop: list(CITIES), status=["pending", "shipped", "delivered"])),
]


# ---------------------------------------------------------------- clean examples


@dataclass
class Question:
    """A clean example: a question, its gold SQL (canonical), and the wording choices that produced it."""

    template: Template
    params: dict[str, Any]
    phrasing: int
    choices: tuple[int, ...]
    sql: str

    @property
    def text(self) -> str:
        return self.template.render(self.phrasing, self.choices, self.params)

    def record(self) -> dict[str, str]:
        return {"instruction": self.text, "input": SCHEMA, "output": self.sql}


def gold_sql(sql: str) -> str:
    """The canonical form normalize also produces; raises if canonicalising is not idempotent."""
    canonical = canonical_sql(sql, "sqlite")
    if canonical_sql(canonical, "sqlite") != canonical:
        raise ValueError(f"canonical SQL is not stable: {canonical}")
    return canonical


def _wording(t: Template, used: list[tuple[int, ...]], rng: random.Random) -> tuple[int, tuple[int, ...]]:
    """A phrasing and synonym choices as unlike the template's earlier questions as a few tries find."""
    def distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
        return sum(x != y for x, y in zip(a, b, strict=False)) + 2 * (a[0] != b[0])

    best: tuple[int, ...] = ()
    for _ in range(24):
        p = rng.randrange(len(t.phrasings))
        cand = (p, *(rng.randrange(len(g)) for g in t.groups(p)))
        if not best or min((distance(cand, u) for u in used), default=0) > min(
                (distance(best, u) for u in used), default=0):
            best = cand
    used.append(best)
    return best[0], best[1:]


def questions(db: sqlite3.Connection, shop: Shop, rng: random.Random, per_template: int) -> list[Question]:
    """Up to `per_template` questions per template whose gold SQL runs and returns a non-empty answer."""
    out: list[Question] = []
    for t in TEMPLATES:
        params = list({json.dumps(p, sort_keys=True): p for p in t.params(shop, rng)}.values())
        rng.shuffle(params)
        used: list[tuple[int, ...]] = []
        for p in params:
            if len(used) == per_template:
                break
            sql = gold_sql(t.sql.format(**p))
            try:
                rows = db.execute(sql).fetchall()
            except sqlite3.Error as e:
                raise ValueError(f"template {t.name}: gold SQL fails on the demo db: {e}\n{sql}") from None
            if not rows or all(v is None for v in rows[0]):
                continue
            out.append(Question(t, p, *_wording(t, used, rng), sql))
    return out


def overlap_keys(q: Question) -> set[int]:
    """13-gram keys of what the demo recipe's decontaminate step compares: instruction and output."""
    return ngram_keys(f"{q.text}\n{q.sql}", 13)


def split_eval(qs: list[Question], rng: random.Random, size: int) -> tuple[list[Question], list[Question]]:
    """Hold out whole templates whose questions and SQL share no 13-word run with any other template.

    Holding out templates, not random questions, keeps the evaluation honest; choosing only templates
    without shared SQL boilerplate keeps every clean training example free of eval overlap, so anything
    decontamination drops is a real leak.
    """
    keys: dict[str, set[int]] = {}
    for q in qs:
        keys.setdefault(q.template.name, set()).update(overlap_keys(q))
    alone = [name for name in keys if not any(keys[name] & keys[other] for other in keys if other != name)]
    rng.shuffle(alone)
    held: set[str] = set()
    for name in alone:
        if sum(q.template.name in held for q in qs) >= size:
            break
        held.add(name)
    return [q for q in qs if q.template.name not in held], [q for q in qs if q.template.name in held]


# ---------------------------------------------------------------- defects

_LITERAL = re.compile(r"('(?:[^']|'')*')")


def messy_sql(sql: str, rng: random.Random) -> str:
    """The same query in lower case with ragged spacing and line breaks; string literals untouched."""
    parts = _LITERAL.split(sql)
    for i in range(0, len(parts), 2):
        code = parts[i].lower().replace(" = ", rng.choice(["=", " = ", "= "]))
        parts[i] = re.sub(" ", lambda _: rng.choice([" ", " ", "  ", "\n  ", "\n"]), code)
    messy = "".join(parts)
    if gold_sql(messy) != sql:
        raise ValueError(f"messy SQL does not canonicalise back:\n{messy}\n{sql}")
    return messy


def reword(q: Question, groups: str) -> str:
    """The question with the first (`groups="first"`) or every synonym group switched to another option."""
    options = q.template.groups(q.phrasing)
    choices = list(q.choices)
    switchable = [i for i, g in enumerate(options) if len(g) > 1]
    for i in switchable[:1] if groups == "first" else switchable:
        choices[i] = (choices[i] + 1) % len(options[i])
    return q.template.render(q.phrasing, tuple(choices), q.params)


def jaccard(a: str, b: str) -> float:
    """Exact word-3-gram Jaccard, the quantity near_dedup estimates with MinHash."""
    shingler = Shingler("word", 3)
    x, y = set(shingler(a).tolist()), set(shingler(b).tolist())
    return len(x & y) / len(x | y)


@dataclass
class Defect:
    """One injected record: what is wrong with it and which step must catch it (and with what reason)."""

    defect: str
    expect_step: str
    expect_reasons: list[str]
    record: dict[str, str]
    source: Question
    in_place: bool = False  # replaces its source in train; otherwise a second copy of it
    detail: str = ""


@dataclass
class DemoData:
    """Where generate() put things, and what it injected (ids as the reader assigns them: train:<index>)."""

    dir: Path
    db: Path
    train: Path
    eval: Path
    defects: list[dict[str, Any]]
    clean: list[str]


COUNTS = {"exact_duplicate": 8, "near_paraphrase": 8, "semantic_paraphrase": 6, "sql_format": 10,
          "empty_answer": 6, "placeholder_input": 6, "eval_leak": 6}
# Injected paraphrases are measured with the same tools the steps use, and kept only with a clear margin
# from the demo recipe's thresholds (near_dedup 0.7 on the instruction, semantic_dedup 0.9).
NEAR_MIN_JACCARD = 0.8
SEMANTIC_MIN_COSINE = 0.93
SEMANTIC_MAX_JACCARD = 0.45


def _semantic_paraphrases(pool: list[Question], n: int) -> list[tuple[Question, str, float, float]]:
    """Rewordings that share few 3-grams with their source but that the embedding model places close."""
    from lmtailor.embeddings import embed

    found = []
    for lo in range(0, len(pool), 48):
        batch = pool[lo : lo + 48]
        variants = [reword(q, "all") for q in batch]
        vecs = embed([q.text for q in batch] + variants)
        cosines = (vecs[: len(batch)] * vecs[len(batch) :]).sum(axis=1).tolist()
        for q, text, cos in zip(batch, variants, cosines, strict=True):
            if cos >= SEMANTIC_MIN_COSINE and (jac := jaccard(q.text, text)) <= SEMANTIC_MAX_JACCARD:
                found.append((q, text, cos, jac))
        if len(found) >= n:
            return found[:n]
    raise ValueError(f"only {len(found)} rewordings qualify as semantic paraphrases; {n} are needed")


def inject(train: list[Question], held_out: list[Question], rng: random.Random) -> list[Defect]:
    """Spoil copies or members of `train` in known ways; the chosen members are disjoint across kinds."""
    pool = train[:]
    rng.shuffle(pool)
    defects: list[Defect] = []
    used: set[int] = set()
    for q, text, cos, jac in _semantic_paraphrases(pool, COUNTS["semantic_paraphrase"]):
        used.add(id(q))
        defects.append(Defect("paraphrased_duplicate", "semantic_dedup", ["semantic_duplicate"],
                              {**q.record(), "instruction": text}, q,
                              detail=f"cosine {cos:.2f}, 3-gram Jaccard {jac:.2f}"))
    near = 0
    for q in pool:
        if near == COUNTS["near_paraphrase"]:
            break
        text = reword(q, "first")
        if id(q) not in used and (jac := jaccard(q.text, text)) >= NEAR_MIN_JACCARD:
            used.add(id(q))
            near += 1
            defects.append(Defect("paraphrased_duplicate", "near_dedup", ["near_duplicate"],
                                  {**q.record(), "instruction": text}, q, detail=f"3-gram Jaccard {jac:.2f}"))
    rest = iter([q for q in pool if id(q) not in used])
    # variants exact_dedup folds away: letter case and runs of whitespace
    spoil_case: list[Callable[[str], str]] = [str.lower, lambda s: s.replace(" ", "  "), str.upper,
                                              lambda s: "  " + s.replace(" ", "\t", 3) + "  "]
    for i in range(COUNTS["exact_duplicate"]):
        q = next(rest)
        defects.append(Defect("exact_duplicate", "exact_dedup", ["exact_duplicate"],
                              {**q.record(), "instruction": spoil_case[i % len(spoil_case)](q.text)}, q))
    for _ in range(COUNTS["sql_format"]):
        q = next(rest)
        defects.append(Defect("sql_format", "normalize", ["sql"],
                              {**q.record(), "output": messy_sql(q.sql, rng)}, q, in_place=True))
    for i in range(COUNTS["empty_answer"]):
        q = next(rest)
        defects.append(Defect("empty_answer", "filter", ["empty_answer"],
                              {**q.record(), "output": ["", "  ", "\n"][i % 3]}, q, in_place=True))
    for i in range(COUNTS["placeholder_input"]):
        q = next(rest)
        defects.append(Defect("placeholder_input", "normalize", ["placeholder_input"],
                              {**q.record(), "input": ["<noinput>", "N/A", "none", "."][i % 4]}, q,
                              in_place=True))
    for i, q in enumerate(rng.sample(held_out, COUNTS["eval_leak"])):
        record = q.record() if i % 2 else {**q.record(), "output": messy_sql(q.sql, rng)}
        defects.append(Defect("eval_leak", "decontaminate", ["eval_overlap"], record, q))
    return defects


def generate(data_dir: Path, seed: int = 0) -> DemoData:
    """Write shop.db, eval.jsonl, train.jsonl (clean examples plus injected defects) and defects.json."""
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    shop = build_shop(rng)
    db_path = data_dir / "shop.db"
    with closing(write_db(shop, db_path)) as db:
        qs = questions(db, shop, rng, per_template=11)
    train, held_out = split_eval(qs, rng, size=40)
    defects = inject(train, held_out, rng)

    # rows: (record, defect or None, the clean question it is or replaces, or None for a copy)
    replaced = {id(d.source): d for d in defects if d.in_place}
    rows: list[tuple[dict[str, str], Defect | None, Question | None]] = []
    for q in rng.sample(train, len(train)):
        d = replaced.get(id(q))
        rows.append((d.record if d else q.record(), d, q))
    for d in defects:
        if d.in_place:
            continue
        after = 0 if d.defect == "eval_leak" else 1 + next(i for i, r in enumerate(rows) if r[2] is d.source)
        rows.insert(rng.randint(after, len(rows)), (d.record, d, None))

    # the record a duplicate or leak copies, by the id the reader will give it; None for in-place defects
    twin_id = {id(q): f"eval:{i}" for i, q in enumerate(held_out)}
    twin_id.update({id(r[2]): f"train:{i}" for i, r in enumerate(rows) if r[2] is not None})
    entries = [{"id": f"train:{i}", "defect": d.defect, "expect_step": d.expect_step,
                "expect_reasons": d.expect_reasons, "twin": None if d.in_place else twin_id[id(d.source)],
                "detail": d.detail}
               for i, (_, d, _) in enumerate(rows) if d is not None]
    write_jsonl(data_dir / "eval.jsonl", (q.record() for q in held_out))
    write_jsonl(data_dir / "train.jsonl", (r[0] for r in rows))
    (data_dir / "defects.json").write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    clean = [f"train:{i}" for i, r in enumerate(rows) if r[1] is None]
    return DemoData(data_dir, db_path, data_dir / "train.jsonl", data_dir / "eval.jsonl", entries, clean)


# ---------------------------------------------------------------- run and check


@dataclass
class Outcome:
    """What the curation did to one injected record."""

    entry: dict[str, Any]
    caught: bool
    by: str


def check(data: DemoData, ledger: list[dict[str, Any]]) -> tuple[list[Outcome], list[dict[str, Any]]]:
    """Each defect's outcome, and the ledger entries that should not exist.

    Those are any drop of a record meant to be kept (clean ones, and defects that normalize repairs), and
    any change to a clean record (its SQL is already canonical, so a change would mean a bug).
    """
    events: dict[str, list[dict[str, Any]]] = {}
    for e in ledger:
        events.setdefault(e["id"], []).append(e)
    outcomes = []
    for d in data.defects:
        seen = events.get(d["id"], [])
        hit = [e for e in seen if e["step"] == d["expect_step"] and e["reason"] in d["expect_reasons"]]
        by = ", ".join(f"{e['step']}:{e['reason']}" for e in (hit or seen)) or "nothing: kept unchanged"
        outcomes.append(Outcome(d, bool(hit), by))
    clean = set(data.clean)
    keep = clean | {d["id"] for d in data.defects if d["expect_step"] == "normalize"}
    wrong = [e for e in ledger if e["id"] in clean or (e["action"] == "drop" and e["id"] in keep)]
    return outcomes, wrong


def _examples(console: Console, data: DemoData, ledger: list[dict[str, Any]]) -> None:
    """A SQL rewrite, a semantic duplicate beside its twin, and an eval leak, straight from the ledger."""
    records = list(read_jsonl(data.train))
    evals = list(read_jsonl(data.eval))

    def text(rid: str) -> str:
        stem, index = rid.split(":")
        return (records if stem == "train" else evals)[int(index)]["instruction"]

    picks = {"sql": ("normalize", "sql"), "semantic": ("semantic_dedup", "semantic_duplicate"),
             "leak": ("decontaminate", "eval_overlap")}
    injected = {d["id"] for d in data.defects}
    for title, (step, reason) in picks.items():
        e = next((e for e in ledger if e["id"] in injected and (e["step"], e["reason"]) == (step, reason)),
                 None)
        if e is None:
            continue
        console.print(f"\n[bold]{e['id']}[/]  {step}: {reason}  [dim]({title})[/]")
        if e["action"] == "change":
            before, after = e["changes"]["output"]
            console.print(f"  before: {before!r}\n  after:  {after}", highlight=False, markup=False)
        else:
            kept = "evaluation record" if e["twin"].startswith("eval:") else "kept instead"
            console.print(f"  dropped: {text(e['id'])}\n  {kept} {e['twin']}: {text(e['twin'])}\n"
                          f"  why: {e['detail']}", highlight=False, markup=False)


def defects_table(outcomes: list[Outcome], step_order: list[str]) -> Table:
    """Per kind of defect, in pipeline order: how many the expected step caught, and what caught each."""
    table = Table(title="injected defects: were they caught?", title_justify="left")
    for col in ("defect", "expected step: reason", "caught", "what happened"):
        table.add_column(col, justify="right" if col == "caught" else "left")
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for o in sorted(outcomes, key=lambda o: step_order.index(o.entry["expect_step"])):
        groups.setdefault((o.entry["defect"], o.entry["expect_step"]), []).append(o)
    for (defect, step), group in groups.items():
        n = sum(o.caught for o in group)
        colour = "green" if n == len(group) else "red"
        table.add_row(defect, f"{step}: {'/'.join(group[0].entry['expect_reasons'])}",
                      f"[{colour}]{n}/{len(group)}[/]",
                      ", ".join(f"{k} ({v})" for k, v in Counter(o.by for o in group).items()))
    return table


def run_demo(out: Path, progress: bool = True) -> bool:
    """Generate the data, curate it with the demo recipe, print what happened; True when all went right."""
    from lmtailor.config import Recipe
    from lmtailor.pipeline import curate
    from lmtailor.summary import print_summary

    console = Console(width=None if sys.stdout.isatty() else 160)
    data = generate(out / "data")
    recipe_path = out / "data" / "recipe.yaml"
    recipe_path.write_text(RECIPE.read_text(encoding="utf-8"), encoding="utf-8")
    kinds = Counter(d["defect"] for d in data.defects)
    console.print(f"[bold]generated[/] {escape(str(data.dir))}: shop.db (customers, products, orders, order_items), "
                  f"eval.jsonl ({sum(1 for _ in read_jsonl(data.eval))} questions from held-out templates),\n"
                  f"  train.jsonl: {len(data.clean)} clean + {len(data.defects)} injected "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), listed in defects.json",
                  highlight=False)

    recipe = Recipe.load(recipe_path)
    manifest = curate(recipe, out / "run", fresh=True, progress=progress)
    print_summary(manifest, str(out / "run"), console)
    ledger = list(read_jsonl(out / "run" / "ledger.jsonl"))
    outcomes, wrong = check(data, ledger)

    console.print(defects_table(outcomes, [s.step for s in recipe.steps]))
    for o in outcomes:
        if not o.caught:
            console.print(f"[red]missed[/] {o.entry['id']} ({o.entry['defect']}): {o.by}", highlight=False)
    dropped = {e["id"] for e in wrong if e["action"] == "drop"} & set(data.clean)
    console.print(f"clean records wrongly dropped: [{'red' if dropped else 'green'}]{len(dropped)}[/] of "
                  f"{len(data.clean)}", highlight=False)
    for e in wrong:
        console.print(f"  [red]should not happen:[/] {e['id']} {e['action']} by {e['step']}: {e['reason']} "
                      f"{e.get('detail', '')}", highlight=False)
    _examples(console, data, ledger)

    ok = all(o.caught for o in outcomes) and not wrong and manifest["counts"]["accounted"]
    verdict = ("[bold green]demo passed:[/] every injected defect was caught by the step meant to catch it; "
               "no clean record was dropped or changed") if ok else "[bold red]demo failed:[/] see above"
    console.print(f"\n{verdict}")
    return ok
